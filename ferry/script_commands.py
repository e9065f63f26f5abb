"""The `script` engine's grammar: a shell script split into commands (each command one
`exec` step), and the summary of how they went. Pure: the Run workflow uses it.

Splitting follows the shell's own grammar closely enough for real scripts: quotes,
escapes, comments, `$(...)`, subshells, `{ ...; }` groups, heredocs, and compound
commands (`if/fi`, `for|while|until/done`, `case/esac`) stay whole. Top-level `;` and
newlines separate commands; `&&`, `||` and `|` keep a chain together as one command.
"""

from __future__ import annotations

OPENERS = {"if": "fi", "case": "esac", "for": "done", "while": "done", "until": "done",
           "select": "done"}
CLOSERS = {"fi", "esac", "done"}
# After these words the next word is again in command position.
COMMAND_PREFIX_WORDS = {"then", "do", "else", "elif", "if", "while", "until", "!", "time"}


def split_script(script: str) -> list[str]:
    """Split a shell script into top-level commands, in order."""
    commands: list[str] = []
    buf: list[str] = []
    stack: list[str] = []  # open constructs: "(", "{", "if", "case", "for", ...
    word: list[str] = []
    command_position = True
    heredocs: list[tuple[str, bool]] = []  # pending (delimiter, strip_tabs)
    i, n = 0, len(script)

    def flush_word() -> None:
        nonlocal command_position
        if not word:
            return
        w = "".join(word)
        word.clear()
        if command_position:
            if w in OPENERS:
                stack.append(w)
            elif w in CLOSERS and stack and stack[-1] in OPENERS:
                stack.pop()
            elif w == "{":
                stack.append("{")
            elif w == "}" and stack and stack[-1] == "{":
                stack.pop()
            command_position = w in COMMAND_PREFIX_WORDS or w in ("{", "}") or w in CLOSERS
        if stack and stack[-1] == "case" and w == "in":
            command_position = True

    def end_command() -> None:
        text = "".join(buf).strip()
        buf.clear()
        if text:
            commands.append(text)

    while i < n:
        c = script[i]
        if c == "\\" and i + 1 < n:
            if script[i + 1] == "\n":  # line continuation
                buf.append(c + "\n")
                i += 2
                continue
            buf.append(script[i : i + 2])
            word.append(script[i : i + 2])
            i += 2
            continue
        if c in ("'", '"', "`"):
            j = _skip_quoted(script, i)
            buf.append(script[i:j])
            word.append(script[i:j])
            i = j
            continue
        if c == "#" and not word:
            j = script.find("\n", i)
            i = n if j < 0 else j
            continue
        if c == "$" and i + 1 < n and script[i + 1] == "(":
            j = _skip_parens(script, i + 1)
            buf.append(script[i:j])
            word.append(script[i:j])
            i = j
            continue
        if c == "<" and script.startswith("<<", i) and not script.startswith("<<<", i):
            j = i + 2
            strip_tabs = j < n and script[j] == "-"
            if strip_tabs:
                j += 1
            while j < n and script[j] in " \t":
                j += 1
            k = j
            while k < n and script[k] not in " \t\n;&|<>()":
                k += 1
            delim = script[j:k].strip("'\"")
            if delim:
                heredocs.append((delim, strip_tabs))
            buf.append(script[i:k])
            i = k
            continue
        if c == "\n":
            flush_word()
            buf.append(c)
            i += 1
            if heredocs:
                i = _consume_heredocs(script, i, heredocs, buf)
                heredocs.clear()
            if not stack and not _continues(buf):
                end_command()
                command_position = True
            else:
                command_position = True
            continue
        if c in " \t":
            flush_word()
            buf.append(c)
            i += 1
            continue
        if c == ";":
            flush_word()
            if script.startswith(";;", i):
                buf.append(";;")
                i += 2
                command_position = True
                continue
            i += 1
            if not stack:
                end_command()
            else:
                buf.append(c)
            command_position = True
            continue
        if c in "&|":
            flush_word()
            two = script[i : i + 2]
            step = 2 if two in ("&&", "||") else 1
            buf.append(script[i : i + step])
            i += step
            command_position = True
            continue
        if c == "(":
            flush_word()
            stack.append("(")
            buf.append(c)
            i += 1
            command_position = True
            continue
        if c == ")":
            flush_word()
            if stack and stack[-1] == "(":
                stack.pop()
            buf.append(c)
            i += 1
            command_position = True
            continue
        buf.append(c)
        word.append(c)
        i += 1
    flush_word()
    end_command()
    return commands


def _continues(buf: list[str]) -> bool:
    """A line ending in `&&`, `||` or `|` continues on the next line."""
    text = "".join(buf).rstrip()
    return text.endswith(("&&", "||", "|"))


def _skip_quoted(s: str, i: int) -> int:
    q = s[i]
    j = i + 1
    while j < len(s):
        if s[j] == "\\" and q != "'":
            j += 2
            continue
        if s[j] == q:
            return j + 1
        j += 1
    return len(s)


def _skip_parens(s: str, i: int) -> int:
    depth = 0
    j = i
    while j < len(s):
        c = s[j]
        if c in ("'", '"', "`"):
            j = _skip_quoted(s, j)
            continue
        if c == "\\":
            j += 2
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return len(s)


def _consume_heredocs(s: str, i: int, heredocs: list[tuple[str, bool]], buf: list[str]) -> int:
    for delim, strip_tabs in heredocs:
        while i < len(s):
            j = s.find("\n", i)
            line = s[i:] if j < 0 else s[i:j]
            end = len(s) if j < 0 else j + 1
            buf.append(s[i:end])
            i = end
            if (line.lstrip("\t") if strip_tabs else line) == delim:
                break
    return i


def summarize(commands_run: int, ok: bool, failed_command: str | None, exit_code: int | None) -> str:
    """The generated summary of a script Run."""
    if ok:
        noun = "command" if commands_run == 1 else "commands"
        return f"Ran {commands_run} {noun}; all succeeded."
    if failed_command is not None:
        return (f"Command {commands_run} failed with exit code {exit_code}: {failed_command}")
    return "The script did not finish."
