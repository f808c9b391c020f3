/* The videos page: upload with a progress bar, then follow the conversion (server_sync/templates/staff_media.html). */
(function () {
  var form = document.getElementById("upload");
  if (!form) return;
  var box = document.getElementById("u-status"), bar = document.getElementById("u-bar"),
      text = document.getElementById("u-text"), send = document.getElementById("u-send");
  // Texts come from the form's data-t-* attributes (translated by the template): no inline script,
  // so the Content-Security-Policy can forbid all of it (server_sync/security.py).
  var T = {uploading: form.dataset.tUploading, converting: form.dataset.tConverting, done: form.dataset.tDone,
           choose: form.dataset.tChoose, lost: form.dataset.tLost};
  function say(msg, bad) { box.hidden = false; text.textContent = msg; text.className = bad ? "bad" : ""; }
  function follow(job) {
    fetch("/staff/media-jobs/" + job, {credentials: "same-origin"}).then(function (r) {
      // A refusal (signed out meanwhile, a job no longer the uploader's) says why in the staff member's words.
      return r.json().then(function (j) { return r.ok ? j : {status: "refused", message: j.reason}; });
    }).then(function (j) {
      if (j.status === "refused") { say(j.message || T.lost, true); send.disabled = false; return; }
      if (j.status === "done") { bar.value = 100; say(T.done); send.disabled = false; setTimeout(function () { location.href = "/staff/media"; }, 800); return; }
      if (j.status === "failed") { say(j.message, true); send.disabled = false; return; }
      bar.value = j.progress; say(T.converting.replace("{p}", j.progress)); setTimeout(function () { follow(job); }, 500);
    }).catch(function () { say(T.lost, true); send.disabled = false; });
  }
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var file = document.getElementById("u-file").files[0];
    if (!file) { say(T.choose, true); return; }
    send.disabled = true;
    var x = new XMLHttpRequest();
    x.open("POST", "/staff/media-upload");
    x.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    x.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    x.setRequestHeader("X-File-Name", encodeURIComponent(file.name));
    x.setRequestHeader("X-Project", document.getElementById("u-project").value);
    x.upload.onprogress = function (e) { if (e.lengthComputable) { var p = Math.round(e.loaded * 100 / e.total); bar.value = p; say(T.uploading.replace("{p}", p)); } };
    x.onload = function () {
      var j = {}; try { j = JSON.parse(x.responseText); } catch (e) {}
      if (x.status === 202) { bar.value = 0; follow(j.job); } else { say(j.reason || T.lost, true); send.disabled = false; }
    };
    x.onerror = function () { say(T.lost, true); send.disabled = false; };
    say(T.uploading.replace("{p}", 0));
    x.send(file);
  });
})();
