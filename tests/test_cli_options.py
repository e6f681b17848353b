"""The commands' shared options: one spelling per concept, hidden old spellings, clean --help."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pytest
import typer
from rich.markup import render
from typer.main import get_command
from typer.testing import CliRunner

from onnxdream.cli import app
from onnxdream.commands.command import aliased, flow
from onnxdream.commands.options import float_list
from onnxdream.errors import OnnxDreamError, OptionError
from onnxdream.mirror_check import check

runner = CliRunner()
TINY = Path(__file__).parent.parent / "fixtures" / "tiny_cnn.onnx"
GROUP = get_command(app)
COMMANDS = sorted(GROUP.commands)  # type: ignore[attr-defined]

# command -> (required arguments, old spelling, current flag, value or None for a flag)
ALIASES = [
    ("layers", ["m.onnx"], "--op", "--op-type", "Conv"),
    ("layers", ["m.onnx"], "--all", "--constants", None),
    ("rename", ["m.onnx"], "--all", "--overwrite-names", None),
    ("expose-layers", ["a.onnx", "b.onnx"], "-m", "--match", "stem.*"),
    ("dream", [], "--channels", "--channel-order", "BGR"),
]


def _help(command: str, width: int = 100) -> str:
    out = runner.invoke(app, [command, "--help"], terminal_width=width, env={"COLUMNS": str(width)})
    assert out.exit_code == 0, out.output
    return out.output


def _params(command: str, args: list[str]) -> dict:
    cmd = GROUP.commands[command]  # type: ignore[attr-defined]
    return cmd.make_context(command, list(args)).params


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_no_bool_placeholder_and_no_eaten_markup(command):
    text = _help(command)
    assert "<bool>" not in text
    cmd = GROUP.commands[command]  # type: ignore[attr-defined]
    for param in cmd.params:
        # rich markup would swallow "[default 0.03]": every help must render as written.
        assert render(param.help or "").plain == (param.help or ""), param.name


@pytest.mark.parametrize("command", COMMANDS)
def test_help_paragraphs_are_not_broken_mid_sentence(command):
    cmd = GROUP.commands[command]  # type: ignore[attr-defined]
    paragraphs = cmd.help.split("\n\n")
    assert all("\n" not in p for p in paragraphs), "the terminal, not the source, breaks lines"
    # At 100 columns every example command stays on one line.
    lines = _help(command).splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("onnxdream "):
            assert not lines[i + 1].strip(), f"example wraps: {line.strip()!r}"


@pytest.mark.parametrize(("command", "args", "old", "new", "value"), ALIASES, ids=lambda v: str(v))
def test_old_spellings_parse_as_the_new_flag_and_stay_hidden(command, args, old, new, value):
    extra = [] if value is None else [value]
    via_old = _params(command, [*args, old, *extra])
    via_new = _params(command, [*args, new, *extra])
    assert via_old == via_new
    assert via_new != _params(command, args)  # the flag did something
    shown = _help(command, width=200)
    assert f" {new} " in shown or f" {new}\n" in shown
    assert f" {old} " not in shown and f" {old}," not in shown


def test_match_and_op_type_repeat_in_every_command_that_selects_layers():
    for command, args in [("layers", ["m.onnx"]), ("check", ["m.onnx"]), ("expose-layers", ["a", "b"])]:
        params = _params(command, [*args, "--match", "a*", "--match", "b*"])
        assert params["match"] == ["a*", "b*"], command
    assert _params("dream", ["--match", "a*", "--match", "b*"])["match"] == ["a*", "b*"]
    params = _params("layers", ["m.onnx", "--op-type", "Conv", "--op", "Relu"])
    assert params["op_type"] == ["Conv", "Relu"]


def test_short_m_is_model_wherever_it_is_shown():
    for command in COMMANDS:
        text = _help(command, width=200)
        for line in text.splitlines():
            if " -m " in line:
                assert "--model" in line, (command, line)
    assert _params("dream", ["-m", "x.onnx"])["model"] == "x.onnx"


def test_layers_old_and_new_spellings_give_the_same_table():
    old = runner.invoke(app, ["layers", str(TINY), "--op", "Conv", "--all", "--json"])
    new = runner.invoke(app, ["layers", str(TINY), "--op-type", "Conv", "--constants", "--json"])
    assert old.exit_code == new.exit_code == 0
    rows = json.loads(new.stdout)
    assert json.loads(old.stdout) == rows
    assert rows and {r["op_type"] for r in rows} == {"Conv"}


def test_layers_match_repeats():
    one = json.loads(runner.invoke(app, ["layers", str(TINY), "--match", "stem.*", "--json"]).stdout)
    two = json.loads(
        runner.invoke(app, ["layers", str(TINY), "--match", "stem.*", "--match", "fc", "--json"]).stdout
    )
    assert [r["name"] for r in two] == [r["name"] for r in one] + ["fc"]


def test_ort_opt_has_one_default_or_says_why():
    defaults = {}
    for command in COMMANDS:
        cmd = GROUP.commands[command]  # type: ignore[attr-defined]
        for param in cmd.params:
            if "--ort-opt" in param.opts:
                defaults[command] = param.default
                if param.default != "all":
                    assert "The default is none, not all as elsewhere: fused nodes" in param.help
    assert defaults == {"expose-layers": "all", "check": "none"}


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("0.5,0.25,1", [0.5, 0.25, 1.0]),
        ("0.5, 0.25 ,1", [0.5, 0.25, 1.0]),
        ("255,", [255.0]),
        ("-1e-3", [-0.001]),
    ],
)
def test_float_list_accepts_spaces_and_a_trailing_comma(text, values):
    assert float_list(text, "--mean") == values


def test_float_list_rejects_words_on_one_line():
    with pytest.raises(OnnxDreamError, match=r"^--std takes comma-separated numbers, got '0.5,x'$"):
        float_list("0.5,x", "--std")
    assert float_list(None, "--std") is None


@pytest.mark.parametrize("command", ["dream", "visualize", "export"])
def test_bad_float_list_exits_2_naming_the_flag(command, tmp_path):
    args = {
        "dream": ["dream", "--demo", str(tmp_path / "o.png")],
        "visualize": ["visualize", str(TINY), "-o", str(tmp_path / "o.png")],
        "export": ["export", "zoo:efficientnet-lite0", str(tmp_path / "o.onnx")],
    }[command]
    out = runner.invoke(app, [*args, "--mean", "0.5,half"])
    assert out.exit_code == 2
    assert out.stderr.strip() == "error: --mean takes comma-separated numbers, got '0.5,half'"
    assert not list(tmp_path.iterdir())


def test_library_errors_name_keywords_and_the_cli_names_flags():
    with pytest.raises(OptionError, match=r"^atol must be a finite number >= 0, got -1.0$"):
        check(str(TINY), atol=-1.0, device="cpu")
    out = runner.invoke(app, ["check", str(TINY), "--atol", "-1", "--device", "cpu"])
    assert out.exit_code == 2
    assert out.stderr.strip() == "error: --atol must be a finite number >= 0, got -1.0"


def test_option_error_renders_given_names_and_python_spellings():
    exc = OptionError("{top} K needs {image}; pass {trust}", "top", "image", trust="trust=True")
    assert str(exc) == "top K needs image; pass trust=True"
    assert exc.render({"top": "--top", "trust": "--trust"}) == "--top K needs image; pass --trust"


def test_flow_joins_paragraph_lines_and_keeps_example_indentation():
    text = "First line\n    goes on.\n\n      onnxdream layers m.onnx\n\n    Last."
    assert flow(text) == "First line goes on.\n\n  onnxdream layers m.onnx\n\nLast."


def test_an_alias_of_a_missing_or_visible_flag_fails_when_the_app_is_built():
    def command(name: Annotated[str, typer.Option("--name")] = "") -> None:
        """A command."""

    for aliases, message in [
        ({"--old": "--missing"}, "no option --missing"),
        ({"--name": "--name"}, "visible"),
    ]:
        bad = typer.Typer()
        bad.command("x", cls=aliased(aliases))(command)
        with pytest.raises(ValueError, match=message):
            get_command(bad)
