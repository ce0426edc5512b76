"""French typography in the French catalogue: a no-break space before ``: ; ! ? »`` and after ``«``.

French puts a space before the two-part signs and inside guillemets, and that space must not
break (a lone ``:`` or ``»`` at the start of a line is a typesetting error): U+00A0 (no-break
space) or U+202F (narrow no-break space) is accepted, a plain space or no space is not.
Placeholders (``%(name)s``, ``{label}``), URLs, markup, entities and times (``02:14``) are left
out, and so is a sign with no space on either side (``clé:secret``, ``a?b``), which is
notation, not prose. The rule: docs/figures-and-languages.md, "French typography".
"""
import re

from babel.messages.pofile import read_po

from app import i18n

NO_BREAK = "\u00a0\u202f"
#: placeholders, URLs, tags, entities and times: not prose, never checked
NOT_PROSE = re.compile(r"%\([^)]*\)[-#0 +]*\d*(?:\.\d+)?[a-z]|%[sd]|\{[^{}]*\}|\w+://\S+|<[^>]*>|&#?\w+;|\d{1,2}:\d{2}")
#: a sign needing a no-break space before it, preceded by a plain space or by a letter
#: (or digit, closing bracket, quote) and followed by a space or the end: "Erreur :" or "Erreur:"
SPACE_BEFORE = re.compile(r"(?:(?<= )|(?<=[\w)\]’'\"%]))[:;!?»](?=\s|$|[\"'’<)])")
#: an opening guillemet not followed by a no-break space
SPACE_AFTER = re.compile(r"«(?![\u00a0\u202f])")


def typography_errors(text):
    """The places in ``text`` (a French string) that break the rule, as short excerpts."""
    prose = NOT_PROSE.sub("\u2063", text)  # an invisible separator: neither a space nor a letter
    errors = []
    for match in SPACE_BEFORE.finditer(prose):
        errors.append(prose[max(0, match.start() - 12):match.end() + 3])
    for match in SPACE_AFTER.finditer(prose):
        errors.append(prose[max(0, match.start() - 3):match.end() + 12])
    return errors


def french_strings():
    with (i18n.SOURCE_CATALOGS / "fr/LC_MESSAGES/messages.po").open("rb") as handle:
        for message in read_po(handle):
            if not message.id:
                continue
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            for string in strings:
                if string:
                    yield message.id, string


def test_the_check_catches_plain_and_missing_spaces():
    """The check fails a plain space and no space, and passes no-break spaces and notation."""
    assert typography_errors("Erreur : le dossier")
    assert typography_errors("Erreur: le dossier")
    assert typography_errors("Supprimer ce dossier ?")
    assert typography_errors("Terminé!")
    assert typography_errors("« Exact\u00a0»")
    assert typography_errors("«\u00a0Exact »")
    assert typography_errors("Un ; deux")
    assert not typography_errors("Erreur\u00a0: le dossier\u202f; puis\u202f? «\u00a0Exact\u00a0»\u202f!")
    assert not typography_errors("À 02:14, voir https://example.test/a?b=c, clé:secret, %(name)s: {label}:")
    assert not typography_errors('<a href="/admin/?id=1">ici</a>')


def test_french_catalogue_has_no_break_spaces_before_double_signs():
    """Every French translation puts a no-break space before : ; ! ? » and after «."""
    problems = [f"{msgid!r}: …{excerpt}…" for msgid, string in french_strings()
                for excerpt in typography_errors(string)]
    assert not problems, f"{len(problems)} French strings with a plain space or none before : ; ! ? » " \
                         "or after «:\n" + "\n".join(problems)
