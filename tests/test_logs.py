"""bsync.ops.logs: stderr levels, the rotating 0600 log file, JSON lines, context fields, redaction."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import stat
from pathlib import Path
from types import MappingProxyType

import pytest
from pydantic import BaseModel, SecretStr

from bsync.ops import logs
from bsync.errors import ConfigError
from bsync.ops.logs import (
    bind_log_context,
    configure_logging,
    log_context,
    redact,
    register_secret,
    register_secrets_from,
)

log = logging.getLogger("bsync.test")
TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.fixture(autouse=True)
def _restore_logging():
    """Each test starts without bsync's handlers, secrets or bound context (a CLI test may
    have bound a run_id in this thread) and leaves none behind."""
    root = logging.getLogger()
    level = root.level
    logs._uninstall_handlers()
    logs.clear_secrets()
    token = logs._context.set(MappingProxyType({}))
    yield
    logs._context.reset(token)
    logs._uninstall_handlers()
    logs.clear_secrets()
    root.setLevel(level)


def ours() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if getattr(h, logs._INSTALLED, False)]


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- the file ----------------------------------------------------------------------------

def test_file_created_0600_with_parent_folders_whatever_the_umask(tmp_path):
    path = tmp_path / "a" / "b" / "bsync.log"
    old = os.umask(0)
    try:
        configure_logging(log_file=path)
    finally:
        os.umask(old)
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_rotation_at_max_bytes_keeps_backups(tmp_path):
    path = tmp_path / "bsync.log"
    configure_logging(log_file=path, max_bytes=2_000, backups=3)
    for i in range(400):
        log.info("line %04d %s", i, "x" * 60)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["bsync.log", "bsync.log.1", "bsync.log.2", "bsync.log.3"]
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= 2_000
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p.name
    assert "line 0399" in path.read_text().splitlines()[-1]
    # the backups are the newest lines before the live file, in order
    kept = [line for name in ("bsync.log.3", "bsync.log.2", "bsync.log.1", "bsync.log")
            for line in (tmp_path / name).read_text().splitlines()]
    numbers = [int(re.search(r"line (\d{4})", line).group(1)) for line in kept]
    assert numbers == list(range(numbers[0], 400))


def test_max_bytes_zero_never_rotates(tmp_path):
    configure_logging(log_file=tmp_path / "bsync.log", max_bytes=0)
    for i in range(200):
        log.info("line %d %s", i, "x" * 60)
    assert [p.name for p in tmp_path.iterdir()] == ["bsync.log"]


def test_text_file_line_has_utc_timestamp_pid_and_fields(tmp_path):
    path = tmp_path / "bsync.log"
    configure_logging(log_file=path)
    with log_context(run_id="r42", command="sync"):
        log.info("created %s", "evt1", extra={"pair": "notion-to-gcal", "note": "two words"})
    line = path.read_text().splitlines()[0]
    stamp, rest = line.split(" ", 1)
    assert TS.match(stamp)
    assert rest == (f"[{os.getpid()}] INFO bsync.test: created evt1  "
                    f'pair=notion-to-gcal note="two words" run_id=r42 command=sync')


def test_quiet_still_writes_info_to_the_file(tmp_path, capsys):
    path = tmp_path / "bsync.log"
    configure_logging(quiet=True, log_file=path)
    log.info("morning run started")
    log.warning("one page has no date")
    log.error("calendar unreachable")
    text = path.read_text()
    assert "morning run started" in text and "one page has no date" in text and "calendar unreachable" in text
    err = capsys.readouterr().err
    assert err == "ERROR bsync.test: calendar unreachable\n"


def test_file_keeps_library_chatter_out_unless_verbose(tmp_path):
    path = tmp_path / "bsync.log"
    configure_logging(log_file=path)
    logging.getLogger("httpx").info("HTTP Request: GET https://api.notion.com/v1/x")
    logging.getLogger("bsync.notion").info("request success: method=get")
    logging.getLogger("bsync.notion").warning("request fail: code=rate_limited")
    logging.getLogger("bsync.core.apply").debug("not at -v0")
    logging.getLogger("googleapiclient.discovery").warning("library warning")
    text = path.read_text()
    assert "HTTP Request" not in text and "request success" not in text and "not at -v0" not in text
    assert "request fail" in text and "library warning" in text

    configure_logging(verbose=2, log_file=path)
    logging.getLogger("httpx").info("HTTP Request: second")
    logging.getLogger("bsync.core.apply").debug("debug at -vv")
    text = path.read_text()
    assert "HTTP Request: second" in text and "debug at -vv" in text


# -- JSON lines --------------------------------------------------------------------------

def test_json_lines_carry_core_extra_and_context_fields(tmp_path):
    path = tmp_path / "bsync.log"
    configure_logging(log_file=path, log_format="json")
    with log_context(run_id="r1", command="sync"):
        log.info("created %s", "evt1", extra={"pair": "notion-to-gcal", "counts": {"created": 2}})
        with log_context(pair="gcal-to-notion", run_id="r1b"):
            log.warning("inner")
        try:
            raise ValueError("bad date on page p1")
        except ValueError:
            log.exception("page failed")
    log.info("outside", extra={"level": "shadowed"})

    first, inner, failed, outside = json_lines(path)
    assert TS.match(first["ts"])
    assert first == {"ts": first["ts"], "level": "INFO", "logger": "bsync.test", "msg": "created evt1",
                     "pid": os.getpid(), "pair": "notion-to-gcal", "counts": {"created": 2},
                     "run_id": "r1", "command": "sync"}
    assert (inner["pair"], inner["run_id"], inner["command"], inner["level"]) == (
        "gcal-to-notion", "r1b", "sync", "WARNING")
    assert failed["level"] == "ERROR" and failed["msg"] == "page failed" and failed["run_id"] == "r1"
    assert failed["exc"].startswith("Traceback") and "ValueError: bad date on page p1" in failed["exc"]
    assert "run_id" not in outside and "command" not in outside
    assert outside["level"] == "INFO" and outside["level_"] == "shadowed"


def test_extra_wins_over_context(tmp_path):
    path = tmp_path / "bsync.log"
    configure_logging(log_file=path, log_format="json")
    with log_context(pair="notion-to-gcal"):
        log.info("x", extra={"pair": "gcal-to-notion"})
    assert json_lines(path)[0]["pair"] == "gcal-to-notion"


def test_json_goes_to_stderr_when_there_is_no_file(capsys):
    configure_logging(log_format="json")
    with log_context(run_id="r9"):
        log.warning("heads up")
    record = json.loads(capsys.readouterr().err)
    assert record["msg"] == "heads up" and record["run_id"] == "r9" and record["level"] == "WARNING"


def test_bind_log_context_stays_for_the_rest_of_the_context(tmp_path):
    path = tmp_path / "bsync.log"
    configure_logging(log_file=path, log_format="json")

    def invocation(run_id: str) -> None:
        bind_log_context(run_id=run_id, command="remind")
        log.info("hello")

    contextvars.copy_context().run(invocation, "a")
    contextvars.copy_context().run(invocation, "b")
    log.info("not bound here")
    lines = json_lines(path)
    assert [line.get("run_id") for line in lines] == ["a", "b", None]


@pytest.mark.parametrize("key", ["msg", "levelname", "_private", "not a name"])
def test_context_refuses_fields_that_clash_with_the_record(key):
    with pytest.raises(ValueError), log_context(**{key: 1}):
        pass


# -- stderr ------------------------------------------------------------------------------

@pytest.mark.parametrize(("verbose", "quiet", "shown"), [
    (0, False, ["WARNING bsync.test: w", "ERROR bsync.test: e", "ERROR bsync.notion: ne"]),
    (1, False, ["INFO bsync.test: i", "WARNING bsync.test: w", "ERROR bsync.test: e",
                "INFO bsync.notion: ni", "WARNING bsync.notion: nw", "ERROR bsync.notion: ne"]),
    (2, False, ["DEBUG bsync.test: d", "INFO bsync.test: i", "WARNING bsync.test: w", "ERROR bsync.test: e",
                "DEBUG bsync.notion: nd", "INFO bsync.notion: ni", "WARNING bsync.notion: nw",
                "ERROR bsync.notion: ne"]),
    (2, True, ["ERROR bsync.test: e", "ERROR bsync.notion: ne"]),
])
def test_stderr_levels(capsys, verbose, quiet, shown):
    configure_logging(verbose=verbose, quiet=quiet)
    notion = logging.getLogger("bsync.notion")
    notion.setLevel(logging.WARNING)  # what notion-client does to the logger it is given
    configure_logging(verbose=verbose, quiet=quiet)  # ...and configuring again undoes it
    for logger, prefix in ((log, ""), (notion, "n")):
        logger.debug(prefix + "d")
        logger.info(prefix + "i")
        logger.warning(prefix + "w")
        logger.error(prefix + "e")
    assert capsys.readouterr().err.splitlines() == shown


def test_configuring_twice_does_not_duplicate_lines(tmp_path, capsys, caplog):
    path = tmp_path / "bsync.log"
    configure_logging(log_file=path)
    configure_logging(log_file=path)
    configure_logging(verbose=1, log_file=path)
    assert len(ours()) == 2
    assert caplog.handler in logging.getLogger().handlers  # pytest's handler is left alone
    log.warning("only once")
    assert path.read_text().count("only once") == 1
    assert capsys.readouterr().err.count("only once") == 1
    assert [r.getMessage() for r in caplog.records] == ["only once"]

    configure_logging()  # dropping the file closes it
    assert len(ours()) == 1
    log.warning("not in the file")
    assert "not in the file" not in path.read_text()


def test_an_unwritable_log_file_is_a_config_error(tmp_path):
    configure_logging()
    before = ours()
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError) as caught:
        configure_logging(log_file=blocker / "bsync.log")
    assert caught.value.exit_code == 2
    assert ours() == before  # the old setup stays when the new one can't be built


def test_bad_arguments():
    with pytest.raises(ValueError):
        configure_logging(log_format="xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        configure_logging(max_bytes=1000, backups=0)


# -- redaction ---------------------------------------------------------------------------

SENDGRID = "SG.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
CALCOM = "cal_live_0123456789abcdef0123456789abcdef"
NOTION = "ntn_1234567890abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"


@pytest.mark.parametrize(("text", "expected"), [
    ("Bearer xyz", "Bearer ***"),
    ("Authorization: Bearer abc.def-ghi~jkl", "Authorization: Bearer ***"),
    ("headers={'Authorization': 'token abc123', 'Accept': 'json'}",
     "headers={'Authorization': 'token ***', 'Accept': 'json'}"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic ***"),
    ("sent Basic dXNlcjpwYXNzd29yZA== to twilio", "sent Basic *** to twilio"),
    (f"sendgrid key {SENDGRID} refused", "sendgrid key SG.*** refused"),
    (f"cal.com key {CALCOM}", "cal.com key cal_live_***"),
    ("cal.com test key cal_0123456789abcdef0123456789abcdef", "cal.com test key cal_***"),
    (f"notion {NOTION} and secret_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg",
     "notion ntn_*** and secret_***"),
    ("POST /token client_secret=GOCSPX-abc123def456&refresh_token=1//0abcdefghijklmnopqrstu&grant_type=refresh_token",
     "POST /token client_secret=***&refresh_token=***&grant_type=refresh_token"),
    ("GET /cb?access_token=ya29.a0AfH6SMB-xyz&expires_in=3599", "GET /cb?access_token=***&expires_in=3599"),
    ('{"access_token": "ya29.a\\"b", "expires_in": 3599, "token_type": "Bearer"}',
     '{"access_token": "***", "expires_in": 3599, "token_type": "Bearer"}'),
    ("token file {'refresh_token': '1//abc', 'client_id': 'x.apps'}",
     "token file {'refresh_token': '***', 'client_id': 'x.apps'}"),
    ("smtp://mailer:hunter2@smtp.example.com:587", "smtp://mailer:***@smtp.example.com:587"),
    ("stray ya29.a0AfH6SMB-xyz and 1//0abcdefghijklmnopqrstu", "stray ya29.*** and 1//***"),
])
def test_redact_masks_credentials(text, expected):
    assert redact(text) == expected
    assert redact(expected) == expected  # idempotent


@pytest.mark.parametrize("text", [
    "Basic settings are fine",
    "calcom-to-notion pair, cal_event, sync_token and nextSyncToken=CPDx, page_token=abc",
    "exit code=3 from http://127.0.0.1:8080/sync",
    "SG.short and secret_short and ntn_short",
])
def test_redact_leaves_ordinary_text_alone(text):
    assert redact(text) == text


def test_registered_secret_masked_in_every_spelling():
    register_secret(SecretStr("my s3cret/value"))
    register_secret("abc")  # too short to mask safely: ignored
    register_secret(None)
    assert redact("a my s3cret/value b my%20s3cret%2Fvalue c my+s3cret%2Fvalue abc") == "a *** b *** c *** abc"


def test_register_secrets_from_a_settings_model():
    class Section(BaseModel):
        token: SecretStr
        name: str = "public-name"

    class Config(BaseModel):
        notion: Section
        extra: dict[str, SecretStr] = {}
        missing: Section | None = None

    register_secrets_from(Config(notion=Section(token=SecretStr("notion-token-123")),
                                 extra={"x": SecretStr("webhook-secret-456")}))
    assert redact("notion-token-123 webhook-secret-456 public-name") == "*** *** public-name"


def test_secrets_redacted_in_text_file_and_stderr(tmp_path, capsys):
    secret = "s3cr3t-value-123"
    register_secret(secret)
    path = tmp_path / "bsync.log"
    configure_logging(log_file=path)
    log.warning("calling with %s and Authorization: Bearer %s", secret, "tok-abcdef")
    try:
        raise RuntimeError(f"remote refused key {secret} ({SENDGRID})")
    except RuntimeError:
        log.exception("send failed")
    for text in (path.read_text(), capsys.readouterr().err):
        assert secret not in text and "tok-abcdef" not in text and SENDGRID not in text
        assert "calling with *** and Authorization: Bearer ***" in text
        assert "RuntimeError: remote refused key *** (SG.***)" in text


def test_secrets_redacted_in_json_message_extra_context_and_exception(tmp_path):
    secret = 'pa"ss\\word-987'
    register_secret(secret)
    path = tmp_path / "bsync.log"
    configure_logging(log_file=path, log_format="json")
    with log_context(url=f"https://api.example.com/x?access_token=abcdef&user={secret}"):
        try:
            raise PermissionError(f"{CALCOM} rejected with {secret}")
        except PermissionError:
            log.exception("auth %s failed", NOTION, extra={"body": {"refresh_token": "1//zzz", "note": secret}})
    raw = path.read_text()
    for leaked in (secret, json.dumps(secret)[1:-1], CALCOM, NOTION, "abcdef", "1//zzz"):
        assert leaked not in raw
    (line,) = json_lines(path)
    assert line["msg"] == "auth ntn_*** failed"
    assert line["url"] == "https://api.example.com/x?access_token=***&user=***"
    assert line["body"] == {"refresh_token": "***", "note": "***"}
    assert "PermissionError: cal_live_*** rejected with ***" in line["exc"]


def test_redaction_also_reaches_a_message_with_bad_arguments(tmp_path):
    register_secret("bad-args-secret")
    path = tmp_path / "bsync.log"
    configure_logging(log_file=path)
    # one argument short; handed to bsync's handlers only (pytest's own handler would raise)
    record = log.makeRecord(log.name, logging.ERROR, __file__, 1, "two %s %s", ("bad-args-secret",), None)
    for handler in ours():
        handler.handle(record)
    text = path.read_text()
    assert "bad-args-secret" not in text and "two %s %s ('***',)" in text
