"""Expanding a xacro file with bounded work: the PyPI ``xacro`` package runs in a child
process (this interpreter, ``python -c``) under a wall-clock timeout, a CPU-time and an
address-space limit, with its output and its messages capped, and every ``${...}``
expression is checked before xacro evaluates it (an exponent must be a number literal
within +-64: ``${9**9**9}`` is refused at once instead of computing a 370-million-digit
number).

Whatever goes wrong ends in one :class:`~sitebot.errors.UrdfError` naming the file (the
included file being processed, when xacro knows it) and, for malformed XML, the line.
Successful expansions are cached per (file, arguments) while the content of every file
they read is unchanged, so loading the same description twice costs one child process.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Mapping

from sitebot.errors import UrdfError

__all__ = ["expand_xacro", "XACRO_TIMEOUT_S", "XACRO_MAX_OUTPUT_BYTES", "XACRO_MAX_MEMORY_BYTES",
           "MAX_EXPONENT"]

#: Wall-clock bound of one expansion [s] (the shipped description takes about 0.15 s).
XACRO_TIMEOUT_S = 20.0
#: Largest expanded URDF [bytes] (the shipped one is about 23 kB).
XACRO_MAX_OUTPUT_BYTES = 8 * 1024 * 1024
#: Address space of the child process [bytes].
XACRO_MAX_MEMORY_BYTES = 1024 * 1024 * 1024
#: Largest exponent literal a xacro expression may raise to.
MAX_EXPONENT = 64
_MAX_STDERR_BYTES = 64 * 1024
_CACHE_SIZE = 16

# The child: only the standard library and xacro (sitebot need not be importable there).
_CHILD = r'''
import ast, json, resource, sys
path, mappings = sys.argv[1], json.loads(sys.argv[2])
max_out, max_mem, cpu_s, max_exp, max_err = (int(a) for a in sys.argv[3:8])
for lim, value in ((resource.RLIMIT_AS, max_mem), (resource.RLIMIT_CPU, cpu_s)):
    try:
        resource.setrlimit(lim, (value, value))
    except (ValueError, OSError):
        pass

class Capped:
    def __init__(self, stream, left):
        self.stream, self.left = stream, left
    def write(self, text):
        if self.left > 0:
            self.stream.write(text[: self.left])
            self.left -= len(text)
        return len(text)
    def flush(self):
        self.stream.flush()

sys.stderr = Capped(sys.stderr, max_err)

def report(message, file=None, line=None):
    sys.stdout.write(json.dumps({"error": message, "file": file, "line": line}))
    sys.stdout.flush()
    sys.exit(3)

try:
    import xacro
    from xml.parsers import expat
except ImportError:
    report("expanding a .xacro file needs the 'xacro' package (pip install xacro)")

def current():
    stack = getattr(xacro, "filestack", None) or []
    return stack[-1] if stack and stack[-1] else path

def exponent_ok(node):
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return (isinstance(node, ast.Constant) and type(node.value) in (int, float)
            and abs(node.value) <= max_exp)

def check(expr):
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return                                  # xacro reports it
    for node in ast.walk(tree):
        bad = (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow)
               and not exponent_ok(node.right))
        bad = bad or (isinstance(node, ast.Call) and len(node.args) >= 2
                      and getattr(node.func, "id", getattr(node.func, "attr", "")) == "pow"
                      and not exponent_ok(node.args[1]))
        if bad:
            raise xacro.XacroException(
                "the exponent of '**' or pow() must be a number literal within "
                "+-%d (a bound on the work one expression may ask for)" % max_exp)

plain_eval = xacro.safe_eval
def bounded_eval(expr, globals, locals=None):
    check(expr)
    return plain_eval(expr, globals, locals)
xacro.safe_eval = bounded_eval

try:
    text = xacro.process_file(path, mappings=mappings).toprettyxml(indent="  ")
except expat.ExpatError as exc:
    report("malformed XML: " + expat.ErrorString(exc.code), current(), exc.lineno)
except MemoryError:
    report("xacro expansion needs more than %d MiB of memory" % (max_mem >> 20), current())
except RecursionError:
    report("xacro expansion failed: macros or expressions nested too deeply", current())
except Exception as exc:
    if isinstance(getattr(exc, "exc", None), MemoryError):   # wrapped by xacro
        report("xacro expansion needs more than %d MiB of memory %s"
               % (max_mem >> 20, str(exc).strip()), current())
    report("xacro expansion failed: %s" % (exc,), current())
if len(text.encode("utf-8")) > max_out:
    report("the expanded URDF is larger than %d bytes" % max_out, path)
deps = sorted({str(f) for f in getattr(xacro, "all_includes", []) if f})
sys.stdout.write(json.dumps({"xml": text, "deps": deps}))
'''

# (file, arguments) -> (expanded text, ((file read, sha1 of its content), ...))
_cache: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[str, tuple[tuple[str, str], ...]]] = {}


def _digest(path: str) -> str:
    try:
        return hashlib.sha1(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def expand_xacro(source: Path | str, mappings: Mapping[str, str] | None = None) -> str:
    """The URDF text that xacro makes of *source* with the arguments *mappings*.

    :raises UrdfError: naming the file: malformed XML (with the line), a xacro error, an
        expression refused by the exponent check, the timeout, the memory or output bound.
    """
    source = Path(source)
    args = {str(k): str(v) for k, v in (mappings or {}).items()}
    key = (str(source), tuple(sorted(args.items())))
    hit = _cache.get(key)
    if hit is not None and all(_digest(f) == d for f, d in hit[1]):
        return hit[0]
    # -P: the current directory is not put on the child's sys.path (a stray xacro.py there)
    safe_path = ["-P"] if sys.version_info >= (3, 11) else []
    cmd = [sys.executable, *safe_path, "-c", _CHILD, str(source), json.dumps(args),
           str(XACRO_MAX_OUTPUT_BYTES), str(XACRO_MAX_MEMORY_BYTES),
           str(int(XACRO_TIMEOUT_S) + 1), str(MAX_EXPONENT), str(_MAX_STDERR_BYTES)]
    with subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        try:
            out, err = proc.communicate(timeout=XACRO_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise UrdfError(f"xacro expansion did not finish within {XACRO_TIMEOUT_S:g} s "
                            "(an expression or macro that asks for unbounded work?)",
                            source) from None
    try:
        result = json.loads(out.decode("utf-8")) if out else {}
    except (UnicodeDecodeError, ValueError):
        result = {}
    if "xml" in result and proc.returncode == 0:
        deps = tuple((f, _digest(f)) for f in dict.fromkeys([str(source), *result["deps"]]))
        if len(_cache) >= _CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
        _cache[key] = (result["xml"], deps)
        return result["xml"]
    if "error" in result:
        line = result.get("line")
        raise UrdfError(str(result["error"]), result.get("file") or source,
                        line if isinstance(line, int) else None)
    tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    raise UrdfError(f"xacro expansion failed (child process exit code {proc.returncode}"
                    f"{'; ' + tail[0][:200] if tail[0] else ''})", source)
