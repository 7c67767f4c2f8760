"""The Go-template evaluator follows Go's text/template on the subset it supports."""

from __future__ import annotations

import pytest

from forge_ollama.gotemplate import GoTemplateError, ollama_prompt, render

MESSAGES = [{"Role": "user", "Content": "hi"}, {"Role": "assistant", "Content": "yo"}]


def test_text_fields_and_range_variables() -> None:
    source = "{{ range $i, $m := .Messages }}[{{ $i }}:{{ $m.Role }}={{ .Content }}]{{ end }}"
    assert render(source, {"Messages": MESSAGES}) == "[0:user=hi][1:assistant=yo]"


def test_trim_markers_remove_the_whitespace_beside_them() -> None:
    source = "a  \n {{- .X -}} \n  b {{ .X }} c"
    assert render(source, {"X": "x"}) == "axb x c"


def test_if_else_if_else_and_comparisons() -> None:
    source = (
        '{{ range .Messages }}{{ if eq .Role "system" }}S{{ else if eq .Role "user" "tool" }}U'
        "{{ else }}A{{ end }}{{ end }}"
    )
    assert render(source, {"Messages": MESSAGES}) == "UA"


def test_variables_declared_outside_a_range_can_be_assigned_inside() -> None:
    source = (
        '{{ $gen := true }}{{ range .Messages }}{{ $gen = ne .Role "assistant" }}{{ end }}'
        "{{ $gen }}"
    )
    assert render(source, {"Messages": MESSAGES}) == "false"


def test_print_spaces_only_between_non_strings() -> None:
    assert render('{{ print "a" 1 2 "b" }}', {}) == "a1 2b"


def test_index_slice_len_and_parenthesised_fields() -> None:
    source = "{{ (index .Messages 1).Content }} {{ len (slice .Messages 1) }}"
    assert render(source, {"Messages": MESSAGES}) == "yo 1"


def test_and_or_short_circuit_and_return_an_operand() -> None:
    assert render('{{ or "" "x" }}|{{ and 0 (index .M 5) }}', {"M": []}) == "x|0"


def test_comparing_different_types_is_an_error_as_in_go() -> None:
    with pytest.raises(GoTemplateError, match="incompatible types"):
        render('{{ eq 1 "1" }}', {})


@pytest.mark.parametrize(
    "source",
    ["{{ with .X }}{{ end }}", "{{ if .X }}", "{{ .X | printf }}", '{{ json "x" }}', "{{ end }}"],
)
def test_what_is_not_supported_is_an_error(source: str) -> None:
    with pytest.raises(GoTemplateError):
        render(source, {"X": "x"})


def test_ollama_prompt_prepends_system_and_merges_consecutive_roles() -> None:
    source = "{{ .System }}|{{ range .Messages }}{{ .Role }}:{{ .Content }};{{ end }}"
    messages = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    assert ollama_prompt(source, messages, system="S") == "S|system:S;user:a\n\nb;"
    with_own = [{"role": "system", "content": "mine"}, *messages]
    assert ollama_prompt(source, with_own, system="S").startswith("mine|system:mine;")


def test_an_ollama_style_template_renders() -> None:
    """The idiom of Ollama's own templates: $last from slice/len, trim markers."""
    source = (
        "{{- range $i, $_ := .Messages }}\n"
        "{{- $last := eq (len (slice $.Messages $i)) 1 -}}\n"
        "<|{{ .Role }}|>\n{{ .Content }}<|end|>\n"
        '{{ if and $last (ne .Role "assistant") }}<|assistant|>\n{{ end }}'
        "{{- end }}"
    )
    messages = [{"role": "user", "content": "hi"}]
    assert ollama_prompt(source, messages) == "<|user|>\nhi<|end|>\n<|assistant|>\n"
