"""Each config problem staff can meet has a plain Japanese wording, made from its kind, place and figures.

The lobby's fault screen (kiosk/app/config_fault.py) shows it first: center staff read Japanese, not
"player.width: Input should be less than or equal to 3840". Every case here is a real file on disk, read
by ``load_config`` as ``kiosk run`` reads it; the wording comes through the screens' compiled catalog.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.config import ConfigError, load_config
from kiosk.config import problems as pk
from kiosk.ui.i18n import gettext_for

ROOT = Path(__file__).resolve().parents[1]
JA = gettext_for("ja")


def _problems(path: Path) -> list[pk.Problem]:
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert [p.text for p in err.value.details] == err.value.problems  # the English lines, as before
    return err.value.details


def _only(tmp_path: Path, body: str | bytes) -> pk.Problem:
    path = tmp_path / "kiosk.toml"
    if isinstance(body, bytes):
        path.write_bytes(body)
    else:
        path.write_text(body, "utf-8")
    found = _problems(path)
    assert len(found) == 1, [p.text for p in found]
    return found[0]


# (file body, kind, the Japanese staff read, the English line as kiosk run prints it)
CASES = {
    "toml-syntax-with-the-line": (
        '[kiosk]\nid = "k-1"\nlanguage = ja\n', pk.TOML_SYNTAX,
        "設定ファイルの 3行目（12文字目）の書き方に誤りがあります。= \" [ ] などの記号が抜けていないか、多すぎないか"
        "見てください。",
        "TOML syntax: Invalid value (at line 3, column 12)"),
    "not-utf8-with-the-line": (
        b'[kiosk]\nid = "k-1"\n# \x93\x8c\x8b\x9e\n', pk.NOT_UTF8,
        "設定ファイルの 3行目に読めない文字があります。UTF-8 の文字で保存してください。",
        "not UTF-8 text: invalid start byte at byte 21"),
    "unknown-key-did-you-mean": (
        '[kiosk]\nid = "k-1"\n\n[player]\nwidht = 1280\n', pk.UNKNOWN_KEY,
        "[player] の widht という設定項目はありません。正しくは width かもしれません。",
        "player.widht: unknown key (did you mean 'width'?)"),
    "unknown-section-did-you-mean": (
        '[kiosk]\nid = "k-1"\n\n[reeder]\nbackend = "sim"\n', pk.UNKNOWN_KEY,
        "[reeder] という設定項目はありません。正しくは reader かもしれません。",
        "reeder: unknown key (did you mean 'reader'?)"),
    "unknown-key-above-every-section": (
        'language = "ja"\n\n[kiosk]\nid = "k-1"\n', pk.UNKNOWN_KEY,
        "ファイルのいちばん上（どの [見出し] よりも前）の language という設定項目はありません。",
        "language: unknown key (valid keys: kiosk, keys, ledger, reader, player, donation, portal, payment, flow, "
        "staff, closeout, volunteer, export, status, projects)"),
    "missing-required-key": (
        '[kiosk]\nlanguage = "ja"\n', pk.MISSING_KEY,
        "[kiosk] の id が書かれていません。必ず書く項目です。",
        "kiosk.id: required key is missing"),
    "missing-key-in-the-second-project": (
        '[kiosk]\nid = "k-1"\n\n[[projects]]\nid = "a"\ntitle = "A"\narea = "green"\n\n'
        '[[projects]]\nid = "b"\ntitle = "B"\n', pk.MISSING_KEY,
        "2番目の [[projects]] の area が書かれていません。必ず書く項目です。",
        "projects[1].area: required key is missing"),
    "a-number-where-text-is-expected": (
        '[kiosk]\nid = "k-1"\n\n[[projects]]\nid = "a"\ntitle = 5\narea = "green"\n', pk.WRONG_TYPE,
        '1番目の [[projects]] の title には文字（"…" で囲む）を書いてください。いまは 5 と書かれています。',
        "projects[0].title: Input should be a valid string (got 5)"),
    "text-where-a-number-is-expected": (
        '[kiosk]\nid = "k-1"\n\n[reader]\ncooldown_ms = "fast"\n', pk.WRONG_TYPE,
        '[reader] の cooldown_ms には小数点のない数を書いてください。いまは "fast" と書かれています。',
        "reader.cooldown_ms: Input should be a valid integer, unable to parse string as an integer (got 'fast')"),
    "a-single-table-where-double-brackets-go": (
        '[kiosk]\nid = "k-1"\n\n[projects]\nid = "a"\n', pk.WRONG_TYPE,
        "[projects] には二重のかっこの見出し [[projects]]を書いてください。",
        "projects: write [[projects]] with double brackets, once above each entry (a single [projects] is one "
        "table, not a list)"),
    "a-value-over-its-maximum": (
        '[kiosk]\nid = "k-1"\n\n[staff]\nfree_attempts = 99\n', pk.OUT_OF_RANGE,
        "[staff] の free_attempts は 10以下にしてください。いまは 99 と書かれています。",
        "staff.free_attempts: Input should be less than or equal to 10 (got 99)"),
    "a-value-under-its-minimum": (
        '[kiosk]\nid = "k-1"\n\n[player]\nwidth = 100\n', pk.OUT_OF_RANGE,
        "[player] の width は 160以上にしてください。いまは 100 と書かれています。",
        "player.width: Input should be greater than or equal to 160 (got 100)"),
    "an-empty-text-where-one-character-is-needed": (
        '[kiosk]\nid = "k-1"\n\n[[projects]]\nid = "a"\ntitle = ""\narea = "green"\n', pk.OUT_OF_RANGE,
        "1番目の [[projects]] の title は 1文字以上にしてください。",
        "projects[0].title: String should have at least 1 character (got '')"),
    "not-among-the-choices-did-you-mean": (
        '[kiosk]\nid = "k-1"\n\n[reader]\nbackend = "pcs"\n', pk.NOT_A_CHOICE,
        '[reader] の backend は次のどれかにしてください："sim" / "nfcpy" / "pcsc"。いまは "pcs" と書かれています。'
        '正しくは "pcsc" かもしれません。',
        "reader.backend: Input should be 'sim', 'nfcpy' or 'pcsc' (got 'pcs'; did you mean 'pcsc'?)"),
    "anything-else-names-the-setting-and-whom-to-call": (
        '[kiosk]\nid = "Bad Id"\n', pk.OTHER,
        '[kiosk] の id の値が正しくありません。いまは "Bad Id" と書かれています。正しくは "bad-id" かもしれません。'
        "キオスクを設置した人に連絡してください。",
        "kiosk.id: must be 2-40 characters: lowercase letters a-z, digits and dashes, starting with a letter or "
        "digit (e.g. 'tsurugashima-center-1') (got 'Bad Id'; did you mean 'bad-id'?)"),
    # Checks of keys against each other: both keys as written in the file, their values, and what to change
    # (not "[donation] の値が正しくありません", which left staff to guess which key and why).
    "default-yen-not-one-of-the-presets": (
        '[kiosk]\nid = "k-1"\n\n[donation]\npresets_yen = [100, 500, 1000]\ndefault_yen = 300\n',
        pk.DEFAULT_NOT_PRESET,
        "[donation] の default_yen（いまは 300）は presets_yen [100, 500, 1000] のどれかにしてください。",
        "donation: default_yen 300 is not one of presets_yen [100, 500, 1000]"),
    "a-preset-over-the-largest-gift": (
        '[kiosk]\nid = "k-1"\n\n[donation]\npresets_yen = [100, 5000]\nmax_per_transaction_yen = 1000\n',
        pk.PRESET_OVER_MAX,
        "[donation] の presets_yen にある 5000 は、max_per_transaction_yen（いまは 1000）より大きい金額です。"
        "presets_yen の金額を 1000以下にするか、max_per_transaction_yen を 5000以上にしてください。",
        "donation: preset 5000 exceeds max_per_transaction_yen 1000"),
    "square-terminal-without-its-location": (
        '[kiosk]\nid = "k-1"\n\n[payment]\nterminal = "square"\n', pk.SQUARE_NO_LOCATION,
        '[payment] に terminal = "square" と書くときは、[payment.square] の location_id も書いてください'
        "（Square の管理画面の「ロケーション」に出ている ID）。",
        'payment: terminal = "square" needs [payment.square] location_id'),
    "lockout-max-below-lockout-base": (
        '[kiosk]\nid = "k-1"\n\n[staff]\nlockout_base_s = 600\nlockout_max_s = 60\n', pk.LOCKOUT_ORDER,
        "[staff] の lockout_max_s（いまは 60）は lockout_base_s（いまは 600）以上にしてください。",
        "staff: lockout_max_s 60 is below lockout_base_s 600"),
    "activity-points-over-its-max": (
        '[kiosk]\nid = "k-1"\n\n[[volunteer.activities]]\nid = "park"\ntitle = "公園清掃"\n\n'
        '[[volunteer.activities]]\nid = "walk"\ntitle = "見守り"\npoints = 50\nmax_points = 10\n',
        pk.POINTS_OVER_MAX,
        "2番目の [[volunteer.activities]] の points（いまは 50）は max_points（いまは 10）以下にしてください。",
        "volunteer.activities[1]: points 50 exceeds max_points 10"),
    "a-window-that-starts-when-it-ends": (
        '[kiosk]\nid = "k-1"\n\n[[player.playlist]]\nproject = "a"\n\n[[player.playlist.windows]]\n'
        'start = "10:00"\nend = "10:00"\n', pk.EMPTY_WINDOW,
        '1番目の [[player.playlist]] の下の 1番目の [[player.playlist.windows]] の start と end が同じ時刻（"10:00"）'
        'なので、この時間帯には一度も'
        '表示されません。end を別の時刻にしてください（一日中なら start = "00:00"、end = "24:00"）。',
        "player.playlist[0].windows[0]: window 10:00–10:00 is empty"),
    "a-window-that-starts-at-24": (
        '[kiosk]\nid = "k-1"\n\n[[player.slides]]\ntitle = "説明会"\ndate = 2025-07-12\n\n'
        '[[player.slides.windows]]\nstart = "24:00"\nend = "10:00"\n', pk.EMPTY_WINDOW,
        '1番目の [[player.slides]] の下の 1番目の [[player.slides.windows]] の start が "24:00" なので、'
        'この時間帯には一度も表示されません。'
        'start は "00:00"〜"23:59" の時刻にしてください（"24:00" は end にだけ書けます）。',
        "player.slides[0].windows[0]: window 24:00–10:00 is empty"),
    "two-projects-with-one-id": (
        '[kiosk]\nid = "k-1"\n\n[[projects]]\nid = "a"\ntitle = "A"\narea = "town"\n\n'
        '[[projects]]\nid = "b"\ntitle = "B"\narea = "town"\n\n'
        '[[projects]]\nid = "a"\ntitle = "C"\narea = "green"\n', pk.DUPLICATE_IDS,
        '3番目の [[projects]] の id（"a"）が 1番目と同じです。[[projects]] の id は、それぞれ別のものにしてください。',
        "projects: duplicate project ids: ['a']"),
    "two-activities-with-one-id": (
        '[kiosk]\nid = "k-1"\n\n[[volunteer.activities]]\nid = "park"\ntitle = "公園清掃"\n\n'
        '[[volunteer.activities]]\nid = "park"\ntitle = "公園清掃（午後）"\n', pk.DUPLICATE_IDS,
        '2番目の [[volunteer.activities]] の id（"park"）が 1番目と同じです。[[volunteer.activities]] の id は、'
        "それぞれ別のものにしてください。",
        "volunteer.activities: duplicate activity ids: ['park']"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_kind_of_problem_in_a_real_file_has_its_japanese_line(tmp_path: Path, case: str):
    body, kind, japanese, english = CASES[case]
    problem = _only(tmp_path, body)
    assert (problem.kind, problem.text) == (kind, english)
    assert problem.say(JA) == japanese


def test_every_check_of_keys_against_each_other_has_its_own_wording_above():
    assert {kind for _, kind, _, _ in CASES.values()} >= set(pk.CROSS_KINDS)


def test_duplicate_ids_count_the_entries_as_the_file_has_them_beside_a_wrong_id(tmp_path: Path):
    """An entry whose own id is wrong is not compared, but still counted: "3番目" is the third in the file."""
    path = tmp_path / "kiosk.toml"
    path.write_text('[kiosk]\nid = "k-1"\n\n[[projects]]\nid = "a"\ntitle = "A"\narea = "town"\n\n'
                    '[[projects]]\nid = "B"\ntitle = "B"\narea = "town"\n\n'
                    '[[projects]]\nid = "a"\ntitle = "C"\narea = "town"\n\n'
                    '[[projects]]\nid = "a"\ntitle = "D"\narea = "town"\n', "utf-8")
    bad_id, dup = _problems(path)
    assert bad_id.loc == ("projects", 1, "id") and "正しくは \"b\" かもしれません" in bad_id.say(JA)
    assert (dup.kind, dup.loc) == (pk.DUPLICATE_IDS, ("projects",))
    assert dup.say(JA) == ('3番目の [[projects]] の id（"a"）が 1番目と同じです。'
                           '4番目の [[projects]] の id（"a"）が 1番目と同じです。'
                           "[[projects]] の id は、それぞれ別のものにしてください。")


def test_a_window_of_the_second_playlist_entry_names_that_entry_too(tmp_path: Path):
    """A window is counted inside its own entry: "1番目の [[player.playlist.windows]]" alone fits a window of
    every entry, so the place names the entry first, as the file has it, down to the key in the window."""
    path = tmp_path / "kiosk.toml"
    path.write_text('[kiosk]\nid = "k-1"\n\n'
                    '[[player.playlist]]\nproject = "a"\n\n[[player.playlist.windows]]\nstart = "09:00"\n'
                    'end = "12:00"\n\n'
                    '[[player.playlist]]\nproject = "b"\n\n[[player.playlist.windows]]\nstart = "10:00"\n'
                    'end = "10:00"\n\n[[player.playlist.windows]]\ndays = ["mon", "someday"]\nstrat = "10:00"\n\n'
                    '[[player.slides]]\ntitle = "A"\ndate = 2025-07-12\n\n'
                    '[[player.slides]]\ntitle = "B"\ndate = 2025-07-19\n\n[[player.slides.windows]]\n'
                    'start = "24:00"\n', "utf-8")
    found = _problems(path)
    assert [p.loc for p in found] == [("player", "playlist", 1, "windows", 0),
                                      ("player", "playlist", 1, "windows", 1, "days", 1),
                                      ("player", "playlist", 1, "windows", 1, "strat"),
                                      ("player", "slides", 1, "windows", 0)]
    assert [p.say(JA) for p in found] == [
        '2番目の [[player.playlist]] の下の 1番目の [[player.playlist.windows]] の start と end が同じ時刻（"10:00"）'
        'なので、この時間帯には一度も表示されません。end を別の時刻にしてください（一日中なら start = "00:00"、'
        'end = "24:00"）。',
        '2番目の [[player.playlist]] の下の 2番目の [[player.playlist.windows]] の days の2番目 は次のどれかにして'
        'ください："mon" / "tue" / "wed" / "thu" / "fri" / "sat" / "sun"。いまは "someday" と書かれています。',
        "2番目の [[player.playlist]] の下の 2番目の [[player.playlist.windows]] の strat という設定項目はありません。"
        "正しくは start かもしれません。",
        '2番目の [[player.slides]] の下の 1番目の [[player.slides.windows]] の start が "24:00" なので、この時間帯には'
        '一度も表示されません。start は "00:00"〜"23:59" の時刻にしてください（"24:00" は end にだけ書けます）。']
    # The English line keeps the whole path; the English place names both entries as well
    assert found[0].text.startswith("player.playlist[1].windows[0]: ")
    assert found[2].say(lambda s: s) == (
        "The kiosk has no setting strat in [[player.playlist.windows]] no. 2 under [[player.playlist]] no. 2. "
        "Perhaps start was meant.")


def test_a_check_of_keys_beside_a_mistyped_key_keeps_the_did_you_mean(tmp_path: Path):
    path = tmp_path / "kiosk.toml"
    path.write_text('[kiosk]\nid = "k-1"\n\n[staff]\nlockout_base_s = 600\nlockout_max_s = 60\n'
                    "idle_timeout = 300\n", "utf-8")
    assert [p.say(JA) for p in _problems(path)] == [
        "[staff] の idle_timeout という設定項目はありません。正しくは idle_timeout_s かもしれません。",
        "[staff] の lockout_max_s（いまは 60）は lockout_base_s（いまは 600）以上にしてください。"]


def test_the_pin_itself_is_not_repeated_in_japanese_either(tmp_path: Path):
    problem = _only(tmp_path, '[kiosk]\nid = "k-1"\n\n[staff]\npin_hash = "482913"\n')
    assert problem.loc == ("staff", "pin_hash")
    assert "482913" not in problem.say(JA) + problem.text + repr(problem.figures)
    assert problem.say(JA) == "[staff] の pin_hash の値が正しくありません。キオスクを設置した人に連絡してください。"


def test_a_missing_file_names_the_file_of_a_near_name(tmp_path: Path):
    """The file's path is on the screen above the problems: the sentence names only what staff look for."""
    (tmp_path / "kiosk.toml").write_text('[kiosk]\nid = "k-1"\n')
    [problem] = _problems(tmp_path / "kiosk.tml")
    assert problem.kind == pk.FILE_MISSING and "did you mean" in problem.text
    assert problem.say(JA) == ("設定ファイルが見つかりません。同じフォルダーに、名前の似た kiosk.toml があります。"
                               "名前の打ち間違いかもしれません。")
    [problem] = _problems(tmp_path / "etc" / "kiosk.toml")
    assert problem.say(JA) == f"設定ファイルが見つかりません（フォルダー {tmp_path / 'etc'} がありません）。"
    (tmp_path / "kiosk-config").mkdir()
    [problem] = _problems(tmp_path / "kiosk-cofig" / "kiosk.toml")
    assert problem.say(JA) == (f"設定ファイルが見つかりません（フォルダー {tmp_path / 'kiosk-cofig'} がありません）。"
                               f"名前の似たフォルダー {tmp_path / 'kiosk-config'} があります。"
                               "名前の打ち間違いかもしれません。")


def test_a_file_that_cannot_be_read(tmp_path: Path):
    (tmp_path / "kiosk.toml").mkdir()  # a folder where the file should be: read fails for root too
    [problem] = _problems(tmp_path / "kiosk.toml")
    assert problem.kind == pk.UNREADABLE
    assert problem.say(JA) == "設定ファイルを読み込めませんでした。"


def test_a_file_the_kiosk_user_may_not_read(tmp_path: Path):
    """Read by a user the file is closed to, as the kiosk user meets a config left at mode 600 (as root: read
    in a forked child that became ``nobody``; root itself reads any file)."""
    from kiosk.config.files import read_config_bytes

    cfg = tmp_path / "kiosk.toml"
    cfg.write_text('[kiosk]\nid = "k-1"\n')
    os.chmod(cfg, 0o600 if os.geteuid() == 0 else 0)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only this, then _exit (no pytest teardown in it)
        status = 1
        try:
            os.close(r)
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            try:
                read_config_bytes(cfg)
                found = []
            except ConfigError as e:
                found = [[p.kind, p.text, dict(p.figures)] for p in e.details]
            os.write(w, json.dumps(found).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        sent = pipe.read()
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    [[kind, text, figures]] = json.loads(sent)
    problem = pk.Problem(kind, text, (), figures)
    who = figures["user"]
    assert kind == pk.UNREADABLE and f'read as user "{who}"' in text
    assert problem.say(JA) == f"キオスク（ユーザー {who}）には、設定ファイルを読む許可がありません。"


def test_every_problem_at_once_each_with_its_japanese_line(tmp_path: Path):
    path = tmp_path / "kiosk.toml"
    path.write_text('[kiosk]\nid = "k-1"\nlanguag = "ja"\n\n[staff]\nfree_attempts = 0\n\n[reader]\n'
                    'backend = "usb"\n')
    found = _problems(path)
    assert [(p.kind, p.loc) for p in found] == [(pk.UNKNOWN_KEY, ("kiosk", "languag")),
                                               (pk.NOT_A_CHOICE, ("reader", "backend")),
                                               (pk.OUT_OF_RANGE, ("staff", "free_attempts"))]
    assert [p.say(JA) for p in found] == [
        "[kiosk] の languag という設定項目はありません。正しくは language かもしれません。",
        '[reader] の backend は次のどれかにしてください："sim" / "nfcpy" / "pcsc"。いまは "usb" と書かれています。',
        "[staff] の free_attempts は 1以上にしてください。いまは 0 と書かれています。"]


def test_every_wording_is_in_the_japanese_catalog():
    """The sentences and the parts put into them (places, kinds of value, ranges): none left in English."""
    base = {"path": "/p", "folder": "/f", "near": "/n", "user": "kiosk", "line": 1, "column": 2, "table": "t",
            "got": "1", "suggest": "x", "limit": 1, "choices": ["a"], "expected": "text", "bound": "min",
            "default": 300, "presets": [100, 500], "preset": 5000, "max": 10, "base": 30, "points": 50,
            "start": "10:00", "end": "10:00", "repeats": [[2, 1, "a"]]}
    variants = [{}, {"top_key": True},
                {"user": None, "folder": None, "near": None, "column": None, "got": None, "suggest": None},
                {"line": None, "column": None}, {"start": "24:00"},
                *({"expected": e} for e in (*pk.EXPECTED, "?")),
                *({"bound": b, "measure": m} for b in ("min", "above", "max", "below", "?")
                  for m in ("value", "chars", "items"))]
    places = [(), ("a",), ("a", "b"), ("a", "b", "c"), ("a", "b", 0), ("a", 0), (0,), ("projects", 0),
              ("player", "playlist", 1, "file"), ("player", "playlist", 1, "windows", 0),
              ("player", "playlist", 1, "windows", 0, "start"), ("player", "slides", 0, "windows", 1, "days", 2)]
    untranslated = set()

    def tr(msgid: str) -> str:
        if JA(msgid) == msgid:
            untranslated.add(msgid)
        return JA(msgid)

    for kind in pk.KINDS:
        for loc in places:
            for v in variants:
                assert pk.Problem(kind, "", loc, {**base, **v}).say(tr)
    assert not untranslated


def test_the_config_package_reads_and_reports_a_file_without_pydantic_or_pygame(tmp_path: Path):
    """``kiosk run``'s cold start reads the file (kiosk/config/files.py) before it knows the cache is valid."""
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text("[kiosk\n")
    code = ("import sys\nfrom kiosk.config.files import ConfigError, parse_toml, read_config_bytes\n"
            "try:\n    parse_toml(*read_config_bytes(sys.argv[1]))\nexcept ConfigError as e:\n"
            "    print(e.details[0].kind)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pygame', 'kiosk')))\n")
    out = subprocess.run([sys.executable, "-c", code, str(cfg)], capture_output=True, text=True, timeout=30,
                         cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stderr
    kind, modules = out.stdout.splitlines()
    assert kind == pk.TOML_SYNTAX
    assert modules == str(["kiosk", "kiosk.config", "kiosk.config.files", "kiosk.config.problems"])
