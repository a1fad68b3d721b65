"""Each message channel's carrier is one entry in notices.channels.CARRIERS: its config section
exists and its sender class offers what the notification pass calls."""

from __future__ import annotations

import importlib

import pytest

from bsync.config import CHANNELS, Settings
from bsync.notices.channels import CARRIERS, EmailSender, SmsSender

PROTOCOLS = {"email": EmailSender, "sms": SmsSender}


def test_every_channel_has_a_carrier():
    assert set(CARRIERS) == set(CHANNELS)


@pytest.mark.parametrize("channel", sorted(CARRIERS))
def test_a_carrier_names_a_config_section_and_a_sender_with_the_channel_protocol(channel):
    carrier = CARRIERS[channel]
    assert carrier.section in Settings.model_fields
    module, _, name = carrier.sender.partition(":")
    sender = getattr(importlib.import_module(module), name)
    protocol = PROTOCOLS[channel]
    wanted = {n for n in vars(protocol) if not n.startswith("_")} | set(protocol.__annotations__)
    missing = {n for n in wanted if n != "requests" and not callable(getattr(sender, n, None))}
    assert not missing, f"{sender.__name__} lacks {sorted(missing)}"
