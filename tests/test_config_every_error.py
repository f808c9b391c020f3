"""Config: a section's cross-field checks are reported beside a mistake in another field of the same section.

pydantic runs a model's ``mode="after"`` validators only when all its fields are valid, so a file with one
bad key in ``[donation]`` and ``default_yen`` not among ``presets_yen`` reported the bad key alone; the staff
member fixed it, reloaded, and only then learned of the second (kiosk/config/base.py, ``cross_check``).
Each case here goes through what staff run (``kiosk doctor --config FILE``, exit 2 and the report on stderr)
and checks the whole report: every problem, each worded and located as when it is the only one.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.config import ConfigError, load_config
from tests.config_report import english_problems

ROOT = Path(__file__).resolve().parents[1]


def _report(tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str) -> list[str]:
    """The problems ``kiosk doctor`` lists for a file holding a valid ``[kiosk]`` and ``body``."""
    path = tmp_path / "kiosk.toml"
    path.write_text('[kiosk]\nid = "k-1"\n' + body, "utf-8")
    assert main(["doctor", "--config", str(path)]) == 2
    # Japanese first (the file, the count, each problem as the fault screen says it), each English line under it
    return english_problems(capsys.readouterr().err, path)


# A section (or list) with a cross-field mistake, and one more key of the same table: valid, or bad.
# (body with {key}, the key valid, the key bad, the bad key's problem, the cross-field problem)
CASES = {
    "donation-default-not-a-preset": (
        "[donation]\npresets_yen = [100, 500]\ndefault_yen = 300\n{key}",
        "points_per_100_yen = 2\n", "points_per_100_yen = -1\n",
        "donation.points_per_100_yen: Input should be greater than or equal to 0 (got -1)",
        "donation: default_yen 300 is not one of presets_yen [100, 500]"),
    "donation-preset-over-max": (
        "[donation]\npresets_yen = [100, 5000]\nmax_per_transaction_yen = 1000\n{key}",
        "daily_limit_per_card_yen = 3000\n", "daily_limit_per_card_yen = 0\n",
        "donation.daily_limit_per_card_yen: Input should be greater than or equal to 1 (got 0)",
        "donation: preset 5000 exceeds max_per_transaction_yen 1000"),
    "donation-unknown-key-did-you-mean": (
        "[donation]\npresets_yen = [100, 500]\ndefault_yen = 300\n{key}",
        "", "points_per_100_yn = 1\n",
        "donation.points_per_100_yn: unknown key (did you mean 'points_per_100_yen'?)",
        "donation: default_yen 300 is not one of presets_yen [100, 500]"),
    "payment-square-without-location": (
        '[payment]\nterminal = "square"\n{key}',
        'sim_mode = "decline"\n', 'sim_mode = "approv"\n',
        "payment.sim_mode: Input should be 'approve', 'decline', 'timeout_applied', 'timeout_lost' or 'offline' "
        "(got 'approv'; did you mean 'approve'?)",
        'payment: terminal = "square" needs [payment.square] location_id'),
    "payment-square-table-bad-other-key": (
        '[payment]\nterminal = "square"\n[payment.square]\n{key}',
        "deadline_s = 60\n", "deadline_s = 5\n",
        "payment.square.deadline_s: Input should be greater than or equal to 10 (got 5)",
        'payment: terminal = "square" needs [payment.square] location_id'),
    "staff-lockout-order": (
        "[staff]\nlockout_base_s = 600\nlockout_max_s = 60\n{key}",
        "free_attempts = 5\n", "free_attempts = 0\n",
        "staff.free_attempts: Input should be greater than or equal to 1 (got 0)",
        "staff: lockout_max_s 60 is below lockout_base_s 600"),
    "activity-points-over-max": (
        '[[volunteer.activities]]\ntitle = "公園清掃"\npoints = 50\nmax_points = 10\n{key}',
        'id = "park"\n', 'id = "Park"\n',
        "volunteer.activities[0].id: must be 1-40 characters: lowercase letters a-z, digits and dashes, starting "
        "with a letter or digit (e.g. 'kodomo-shokudo') (got 'Park'; did you mean 'park'?)",
        "volunteer.activities[0]: points 50 exceeds max_points 10"),
    "activity-points-over-max-required-key-missing": (
        '[[volunteer.activities]]\nid = "park"\npoints = 50\nmax_points = 10\n{key}',
        'title = "公園清掃"\n', "",
        "volunteer.activities[0].title: required key is missing",
        "volunteer.activities[0]: points 50 exceeds max_points 10"),
    "playlist-window-empty": (
        '[[player.playlist]]\nproject = "a"\n[[player.playlist.windows]]\nstart = "10:00"\nend = "10:00"\n{key}',
        'days = ["mon"]\n', 'days = ["mon", "funday"]\n',
        "player.playlist[0].windows[0].days[1]: Input should be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun' "
        "(got 'funday')",
        "player.playlist[0].windows[0]: window 10:00–10:00 is empty"),
    "slide-window-empty-did-you-mean": (
        '[[player.slides]]\ntitle = "説明会"\ndate = 2025-07-12\n'
        '[[player.slides.windows]]\nstart = "24:00"\nend = "10:00"\n{key}',
        "", 'dayz = ["mon"]\n',
        "player.slides[0].windows[0].dayz: unknown key (did you mean 'days'?)",
        "player.slides[0].windows[0]: window 24:00–10:00 is empty"),
    "activity-ids-duplicate": (
        '[[volunteer.activities]]\nid = "a"\ntitle = "x"\n[[volunteer.activities]]\nid = "a"\ntitle = "y"\n'
        '[[volunteer.activities]]\nid = "b"\n{key}',
        'title = "z"\n', 'title = ""\n',
        "volunteer.activities[2].title: String should have at least 1 character (got '')",
        "volunteer.activities: duplicate activity ids: ['a']"),
    "project-ids-duplicate": (
        '[[projects]]\nid = "a"\ntitle = "x"\narea = "town"\n[[projects]]\nid = "a"\ntitle = "y"\narea = "town"\n'
        '[[projects]]\nid = "b"\ntitle = "z"\n{key}',
        'area = "green"\n', 'area = "sport"\n',
        "projects[2].area: Input should be 'children', 'welfare', 'green', 'culture' or 'town' (got 'sport')",
        "projects: duplicate project ids: ['a']"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_bad_key_and_a_cross_field_mistake_in_one_section_are_reported_in_one_load(tmp_path, capsys, case):
    body, _, bad, bad_problem, cross_problem = CASES[case]
    assert _report(tmp_path, capsys, body.format(key=bad)) == [bad_problem, cross_problem]


@pytest.mark.parametrize("case", CASES)
def test_each_problem_reads_as_when_it_is_the_only_one(tmp_path, capsys, case):
    """Same words, same place, did-you-mean as before: the cross-field mistake alone, the bad key alone."""
    body, good, _, _, cross_problem = CASES[case]
    assert _report(tmp_path, capsys, body.format(key=good)) == [cross_problem]


@pytest.mark.parametrize("case", CASES)
def test_each_cross_field_mistake_has_its_own_kind_and_japanese_words(tmp_path, case):
    """Alone or beside a bad key: said from its own kind and figures, both keys named (kiosk/config/problems.py),
    never as the catch-all "[donation] の値が正しくありません" that left staff to guess what to change."""
    from kiosk.config import problems as pk
    from kiosk.ui.i18n import gettext_for

    body, good, bad, _, cross_problem = CASES[case]
    for key in (good, bad):
        path = tmp_path / "kiosk.toml"
        path.write_text('[kiosk]\nid = "k-1"\n' + body.format(key=key), "utf-8")
        with pytest.raises(ConfigError) as err:
            load_config(path)
        cross = err.value.details[-1]
        words = cross.say(gettext_for("ja"))
        assert cross.text == cross_problem and cross.kind in pk.CROSS_KINDS, (cross.kind, cross.text)
        assert "値が正しくありません" not in words and "キオスクを設置した人" not in words, words


def test_two_cross_field_mistakes_in_one_section_are_both_reported(tmp_path, capsys):
    body = "[donation]\npresets_yen = [100, 5000]\ndefault_yen = 300\npoints_per_100_yen = -1\n"
    assert _report(tmp_path, capsys, body) == [
        "donation.points_per_100_yen: Input should be greater than or equal to 0 (got -1)",
        "donation: default_yen 300 is not one of presets_yen [100, 5000]",
        "donation: preset 5000 exceeds max_per_transaction_yen 1000",
    ]


@pytest.mark.parametrize("body,problems", [
    # A check one of whose fields is itself invalid stays quiet: that field's own error is the one to fix.
    ("[donation]\npresets_yen = [100, -5]\ndefault_yen = 300\nmax_per_transaction_yen = 50\n",
     ["donation.presets_yen: preset amounts must be positive yen, got [-5]"]),
    ('[donation]\npresets_yen = [100, 500]\ndefault_yen = "lots"\nmax_per_transaction_yen = 0\n',
     ["donation.default_yen: Input should be a valid integer, unable to parse string as an integer (got 'lots')",
      "donation.max_per_transaction_yen: Input should be greater than or equal to 1 (got 0)"]),
    ("[staff]\nlockout_base_s = 600\nlockout_max_s = 0\n",
     ["staff.lockout_max_s: Input should be greater than or equal to 1 (got 0)"]),
    ('[payment]\nterminal = "squar"\n',
     ["payment.terminal: Input should be 'sim' or 'square' (got 'squar'; did you mean 'square'?)"]),
    ('[payment]\nterminal = "square"\n[payment.square]\nlocation_id = "bad id!"\n',
     ["payment.square.location_id: String should match pattern '^[A-Za-z0-9_-]{0,64}$' (got 'bad id!')"]),
    ('[payment]\nterminal = "square"\nsquare = 5\n',
     ["payment.square: must be a [payment.square] section (a table of keys), not a single value"]),
    ('[[volunteer.activities]]\nid = "park"\ntitle = "x"\npoints = "many"\nmax_points = 10\n',
     ["volunteer.activities[0].points: Input should be a valid integer, unable to parse string as an integer "
      "(got 'many')"]),
    ('[[player.playlist]]\nproject = "a"\n[[player.playlist.windows]]\nstart = "25:00"\nend = "25:00"\n',
     [f"player.playlist[0].windows[0].{key}: must be a time as HH:MM with two digits each, from 00:00 to 24:00 "
      "(e.g. '09:00') (got '25:00')" for key in ("start", "end")]),
    ('[[projects]]\nid = "A"\ntitle = "x"\narea = "town"\n[[projects]]\nid = "A"\ntitle = "y"\narea = "town"\n',
     [f"projects[{i}].id: must be 1-40 characters: lowercase letters a-z, digits and dashes, starting with a "
      "letter or digit (e.g. 'kodomo-shokudo') (got 'A'; did you mean 'a'?)" for i in (0, 1)]),
])
def test_no_cross_field_error_about_a_field_that_is_itself_invalid(tmp_path, capsys, body, problems):
    assert _report(tmp_path, capsys, body) == problems


@pytest.mark.parametrize("name", ["kiosk.example.toml", "demo.toml"])
def test_a_valid_config_loads_exactly_what_the_file_says(name):
    path = ROOT / "config" / name
    data = json.loads(json.dumps(tomllib.loads(path.read_text("utf-8")), default=str))  # dates as ISO text
    cfg = load_config(path)
    assert cfg.model_dump(mode="json", exclude_unset=True, exclude={"base_dir"}) == data
    assert type(cfg.donation).__name__ == "DonationSection" and cfg.donation.default_yen in cfg.donation.presets_yen


def test_the_stand_in_a_check_gets_is_never_what_a_load_returns():
    """On a bad file the checks run on stand-ins holding only their fields; a good one is a whole model."""
    from kiosk.config import validate_config
    from kiosk.config.payment import PaymentConfig, SquareConfig

    cfg = validate_config({"kiosk": {"id": "k-1"}, "payment": {"terminal": "square", "square": {"location_id": "L1"}}})
    assert type(cfg.payment) is PaymentConfig and type(cfg.payment.square) is SquareConfig
    with pytest.raises(ConfigError) as err:
        validate_config({"kiosk": {"id": "k-1"}, "staff": {"lockout_base_s": 600, "lockout_max_s": 60,
                                                           "idle_timeout_s": 1}})
    assert err.value.problems == ["staff.idle_timeout_s: Input should be greater than or equal to 30 (got 1)",
                                  "staff: lockout_max_s 60 is below lockout_base_s 600"]


def _config_models() -> list[type]:
    import importlib
    import pkgutil

    import kiosk.config
    from kiosk.config.base import Section

    found: set[type] = set()
    for mod in pkgutil.iter_modules(kiosk.config.__path__):
        m = importlib.import_module(f"kiosk.config.{mod.name}")
        found |= {c for c in vars(m).values() if isinstance(c, type) and issubclass(c, Section) and c is not Section}
    return sorted(found, key=lambda c: c.__name__)


def test_no_section_check_is_an_after_validator():
    """A ``model_validator(mode="after")`` runs only when every field is valid: its error would again wait
    for the next load. Cross-field checks are ``cross_check`` methods (kiosk/config/base.py)."""
    for cls in _config_models():
        modes = {d.info.mode for d in cls.__pydantic_decorators__.model_validators.values()}
        assert "after" not in modes, f"{cls.__name__}: make its after-validator a cross_check"


def test_every_cross_field_check_has_a_case_above():
    from kiosk.config.base import _checks

    checks = {(cls.__name__, check.__name__) for cls in _config_models() for check, _ in _checks(cls)}
    assert checks == {("DonationSection", "_default_in_presets"), ("DonationSection", "_presets_within_max"),
                      ("PaymentConfig", "_square_complete"), ("StaffSection", "_lockout_order"),
                      ("Activity", "_default_within_max"), ("TimeWindow", "_not_empty")}, \
        "a new cross_check needs a case in CASES (a bad key beside it) and a line here"
