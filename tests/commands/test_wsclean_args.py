"""WSClean's -update-model-required / -no-update-model-required in ``radioflow image``'s parser."""
from __future__ import annotations

import pytest

from radioflow.commands.wsclean_args import parse_image_args
from radioflow.errors import UsageError

BASE = ["x.ms", "-size", "64", "-scale", "1amin"]


def test_model_data_is_written_only_when_asked_and_the_last_flag_wins():
    assert not parse_image_args(BASE + ["-niter", "10"]).update_model
    assert parse_image_args(BASE + ["-niter", "10", "-update-model-required"]).update_model
    assert not parse_image_args(BASE + ["-niter", "10", "-update-model-required", "-no-update-model-required"]).update_model
    assert parse_image_args(BASE + ["--no-update-model-required", "--update-model-required", "-niter", "1"]).update_model


def test_update_model_without_clean_is_refused():
    assert not parse_image_args(BASE + ["-no-update-model-required"]).update_model
    with pytest.raises(UsageError, match="-update-model-required .* needs -niter N > 0"):
        parse_image_args(BASE + ["-update-model-required"])
