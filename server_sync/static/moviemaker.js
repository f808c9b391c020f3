// The movie maker's pages (server_sync/templates/staff_movies.html, staff_movie.html): no inline script.
//
// The form: sent as multipart/form-data with an upload bar; a photo over the size limit is named at once,
// before anything is sent; the portal's answer puts each message beside its photo and keeps every chosen
// file (the page is not reloaded). Once every byte is sent it says the portal is checking the photos; each
// caption box counts down the characters left. Without this script the form posts normally and the portal answers
// with the page. The movie page: follows the job to 100 %, then reloads to show the preview.
"use strict";

(function () {
  function say(box, text, msg, bad) { box.hidden = false; text.textContent = msg; text.className = bad ? "bad" : ""; }

  function clearErrors(form) {
    form.querySelectorAll("p.err.live").forEach(function (p) { p.remove(); });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
  }

  function showError(form, field, msg) {
    var input = form.querySelector("[name='" + field + "']");
    var p = document.createElement("p");
    p.className = "bad err live";
    p.dataset.for = field;
    p.textContent = msg;
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.insertAdjacentElement("afterend", p);
    } else {
      form.querySelector("ol.photos").insertAdjacentElement("beforebegin", p);
    }
  }

  // Each caption box counts down the characters left (as the portal counts them: code points, spaces at the ends
  // not counted) and says when there are too many. Nothing typed or pasted is ever cut: the portal refuses a
  // caption that is still too long, with its message beside it.
  function countCaption(input, left, T) {
    var max = Number(input.dataset.max), n = Array.from(input.value.trim()).length;
    // The page gives each count's two forms (its data-t-*-one for 1): "1 character left", "2 characters left".
    if (n <= max) { left.textContent = counted(T.tLeft, T.tLeftOne, max - n); left.className = "hint"; }
    else { left.textContent = counted(T.tOver, T.tOverOne, n - max); left.className = "bad"; }
  }

  function counted(many, one, n) {
    return (n === 1 && one ? one : many).replace("{n}", n);
  }

  var form = document.getElementById("movie-form");
  if (form) {
    form.querySelectorAll("input[data-max]").forEach(function (input) {
      var left = document.getElementById(input.id + "-left");
      if (!left) return;
      input.addEventListener("input", function () { countCaption(input, left, form.dataset); });
      countCaption(input, left, form.dataset);
    });
  }
  if (form) {
    var box = document.getElementById("movie-status"), bar = document.getElementById("movie-bar"),
        text = document.getElementById("movie-text"), send = document.getElementById("movie-send");
    var T = form.dataset, limit = Number(T.photoMb) * 1024 * 1024;
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      clearErrors(form);
      form.querySelectorAll("p.err").forEach(function (p) { p.remove(); });
      var tooLarge = false;
      form.querySelectorAll("input[type=file]").forEach(function (input, i) {
        if (input.files[0] && input.files[0].size > limit) {
          tooLarge = true;
          showError(form, input.name, T.tTooLarge.replace("{n}", i + 1));
        }
      });
      if (tooLarge) return;
      send.disabled = true;
      bar.value = 0;
      var x = new XMLHttpRequest();
      x.open("POST", form.action);
      x.setRequestHeader("Accept", "application/json");
      var sent = false;
      x.upload.onprogress = function (e) {
        if (sent || !e.lengthComputable) return;
        var p = Math.round(e.loaded * 100 / e.total); bar.value = p; say(box, text, T.tUploading.replace("{p}", p));
      };
      // Every byte is sent; the portal now checks each photo (seconds for a large one) before it answers.
      x.upload.onload = function () {
        sent = true;
        bar.removeAttribute("value");  // an indeterminate bar: something is happening, no percentage to give
        say(box, text, T.tChecking);
      };
      x.onload = function () {
        var j = {}; try { j = JSON.parse(x.responseText); } catch (e) {}
        if (x.status === 202 && j.next) { location.href = j.next; return; }
        send.disabled = false;
        box.hidden = true;
        var errs = j.errors || {};
        Object.keys(errs).forEach(function (k) { showError(form, k, errs[k]); });
        if (!Object.keys(errs).length) say(box, text, j.reason || T.tLost, true);
        var first = form.querySelector("p.err.live");
        if (first) first.scrollIntoView({block: "center"});
      };
      x.onerror = function () { say(box, text, T.tLost, true); send.disabled = false; };
      say(box, text, T.tUploading.replace("{p}", 0));
      x.send(new FormData(form));
    });
  }

  var progress = document.getElementById("movie-progress");
  if (progress) {
    var pbar = document.getElementById("movie-bar"), ptext = document.getElementById("movie-text");
    var P = progress.dataset;
    var follow = function () {
      fetch("/staff/movies/" + P.job + "/job", {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (r) { return r.json(); })
        .then(function (j) {
          if (j.status === "done" || j.status === "failed") { location.reload(); return; }
          pbar.value = j.progress;
          ptext.textContent = P.tMaking.replace("{p}", j.progress);
          setTimeout(follow, 500);
        })
        .catch(function () { ptext.textContent = P.tLost; ptext.className = "bad"; });
    };
    setTimeout(follow, 300);
  }
})();
