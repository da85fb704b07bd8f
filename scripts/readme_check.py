"""Run the README's curl walkthrough, verbatim, against a running `make run`, and check what it promises.

    python scripts/readme_check.py [BASE_URL]     (default http://127.0.0.1:8000; .ci/run passes its port)

Every ```sh block from "Walkthrough with curl" up to "Demo data" runs in one bash session, in order, from the
repository (its `make superuser` joins the server's database). Where a command prints a status code
(`-w '%{http_code}\\n'`) and its comment names one (`# 204`), the code must match; no answer may be a 5xx or
mention a traceback. Exit status 1 on any miss, with the command and what it printed.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
README = BASE_DIR / "README.md"
EXPECTED_CODE = re.compile(r"-w '%\{http_code\}\\n'.*#\s*(\d{3})\b")


def walkthrough_commands(readme: str) -> list[str]:
    """The walkthrough's commands, a continued line (ending in a backslash) joined with the lines it continues."""
    section = readme[readme.index("## Walkthrough with curl") : readme.index("## Demo data")]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        current = ""
        for line in block.splitlines():
            current += line + "\n"
            if not line.rstrip().endswith("\\") and not current.strip().endswith(("{", "(")) and balanced(current):
                commands.append(current)
                current = ""
        if current.strip():
            commands.append(current)
    return commands


def balanced(text: str) -> bool:
    """Whether a command is complete: shell functions, subshells, loops and quotes closed."""
    code = re.sub(r"'[^']*'", "", text)  # single-quoted text holds no structure
    code = re.sub(r"#[^\n]*", "", code)  # nor do comments
    loops = len(re.findall(r"\bdo\b", code)) - len(re.findall(r"\bdone\b", code))
    return (
        code.count("{") <= code.count("}")
        and code.count("(") <= code.count(")")
        and code.count('"') % 2 == 0
        and loops <= 0
    )


def script(commands: list[str], base_url: str) -> str:
    """A bash script that runs each command and prints a marker with its number after it."""
    lines = []
    for number, command in enumerate(commands):
        lines.append(command.replace("http://127.0.0.1:8000", base_url).rstrip("\n"))
        lines.append(f"printf '\\n@@command {number}@@\\n'")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    base_url = argv[1] if len(argv) > 1 else "http://127.0.0.1:8000"
    commands = walkthrough_commands(README.read_text())
    bash = shutil.which("bash") or "/bin/bash"
    result = subprocess.run(
        [bash, "-c", script(commands, base_url)], cwd=BASE_DIR, capture_output=True, text=True, timeout=600
    )
    outputs = dict.fromkeys(range(len(commands)), "")
    pieces = re.split(r"\n?@@command (\d+)@@\n", result.stdout)
    for text, number in zip(pieces[0::2], pieces[1::2], strict=False):
        outputs[int(number)] = text
    misses = []
    for number, command in enumerate(commands):
        output = outputs[number]
        expected = EXPECTED_CODE.search(command.replace("\\\n", " "))
        if expected and output.strip().splitlines()[-1:] != [expected[1]]:
            misses.append((command, f"expected {expected[1]}, printed {output.strip()[-200:]!r}"))
        last_line = (output.strip().splitlines() or [""])[-1]
        if re.fullmatch(r"5\d\d", last_line) or "Traceback" in output or "A server error occurred" in output:
            misses.append((command, f"a server error: {output.strip()[-200:]!r}"))
    if result.returncode != 0:
        misses.append(("(the whole walkthrough)", f"bash exited {result.returncode}: {result.stderr[-500:]}"))
    for command, problem in misses:
        print(f"README walkthrough: {problem}\n  {command.strip()[:300]}", file=sys.stderr)
    checked = sum(1 for command in commands if EXPECTED_CODE.search(command.replace("\\\n", " ")))
    print(f"README walkthrough: {len(commands)} commands run, {checked} status codes checked, {len(misses)} misses")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
