#!/usr/bin/python3
"""examples/pyspark_msk.py: compiles, and talks to Kafka the kbridge way.

pyspark is not installed for the tests, so a recording stand-in for the pyspark modules runs
main(): every .format()/.option()/.options() on the stream reader and writer is captured and
checked (kbridge's listener, PLAINTEXT, topics, checkpoint, no kafka.ssl.*). One "ok"/"FAIL"
line per check; exit 1 on any failure.
"""

import ast
import contextlib
import importlib.util
import io
import os
import py_compile
import re
import sys
import tempfile
import types

sys.dont_write_bytecode = True  # leave no __pycache__ next to the example

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLE = os.path.join(REPO, "examples", "pyspark_msk.py")
RESULTS = [0, 0]


def check(ok, what, detail=""):
    RESULTS[0 if ok else 1] += 1
    print("%-4s %s%s" % ("ok" if ok else "FAIL", what, (" -- %s" % detail) if detail and not ok else ""))


class Rec:
    """Stands for any pyspark object: attributes, calls and operators return Recs."""

    log = []

    def __init__(self, path="pyspark"):
        self._path = path

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return Rec(self._path + "." + name)

    def __call__(self, *args, **kwargs):
        Rec.log.append((self._path, args, kwargs))
        return Rec(self._path + "()")

    def _op(self, *_):
        return Rec(self._path + "<op>")

    __mul__ = __rmul__ = __add__ = __ge__ = __le__ = __gt__ = __lt__ = __and__ = __or__ = _op
    __eq__ = __ne__ = _op
    __hash__ = object.__hash__


def stub_pyspark():
    root = Rec("pyspark")
    mods = {}
    for name in ("pyspark", "pyspark.sql", "pyspark.sql.functions", "pyspark.sql.types"):
        m = types.ModuleType(name)
        m.__getattr__ = lambda attr, _n=name: getattr(Rec(_n), attr)
        mods[name] = m
    mods["pyspark.sql"].SparkSession = Rec("SparkSession")
    mods["pyspark.sql"].functions = mods["pyspark.sql.functions"]
    mods["pyspark.sql"].types = mods["pyspark.sql.types"]
    sys.modules.update(mods)
    return root


def chain_options(side):
    """(format, {option: value}) for calls on readStream or writeStream."""
    fmt, opts = None, {}
    for path, args, kwargs in Rec.log:
        if ("." + side) not in path:
            continue
        last = path.rsplit(".", 1)[-1]
        if last == "format":
            fmt = args[0]
        elif last == "option":
            opts[args[0]] = args[1]
        elif last == "options":
            opts.update(kwargs)
    return fmt, opts


def main():
    try:
        with tempfile.TemporaryDirectory() as d:
            py_compile.compile(EXAMPLE, cfile=os.path.join(d, "x.pyc"), doraise=True)
        check(True, "examples/pyspark_msk.py compiles")
    except py_compile.PyCompileError as e:
        check(False, "examples/pyspark_msk.py compiles", e.msg)
        return 1

    stub_pyspark()
    spec = importlib.util.spec_from_file_location("pyspark_msk", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            mod.parse_args([])
        check(False, "--checkpoint is required")
    except SystemExit:
        check(True, "--checkpoint is required")

    os.environ.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    Rec.log.clear()
    mod.main(["--checkpoint", "gs://bucket/checkpoints/orders-to-results"])
    rfmt, ropts = chain_options("readStream")
    wfmt, wopts = chain_options("writeStream")
    check(rfmt == "kafka" and wfmt == "kafka", "reads and writes format kafka", (rfmt, wfmt))
    for side, opts in (("read", ropts), ("write", wopts)):
        check(opts.get("kafka.bootstrap.servers") == "127.0.0.1:9092",
              "%s: kafka.bootstrap.servers = 127.0.0.1:9092 (kbridge)" % side,
              opts.get("kafka.bootstrap.servers"))
        check(opts.get("kafka.security.protocol") == "PLAINTEXT",
              "%s: kafka.security.protocol = PLAINTEXT" % side, opts.get("kafka.security.protocol"))
        bad = [k for k in opts if k.startswith(("kafka.ssl.", "kafka.sasl."))]
        check(not bad, "%s: no kafka.ssl.* / kafka.sasl.* options" % side, bad)
    check(ropts.get("subscribe") == "orders", "reads topic orders", ropts.get("subscribe"))
    check(wopts.get("topic") == "results", "writes topic results", wopts.get("topic"))
    check(wopts.get("checkpointLocation") == "gs://bucket/checkpoints/orders-to-results",
          "writer has the checkpointLocation given", wopts.get("checkpointLocation"))
    check(any(p.endswith(".awaitTermination") for p, _, _ in Rec.log), "main() awaits the query")
    tree = ast.parse(open(EXAMPLE).read())
    doc = ast.get_docstring(tree, clean=False)
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
               and isinstance(n.value, str) and n.value != doc]
    bad = [x for x in strings if re.search(r"ssl\.|truststore|keystore|SASL_SSL|^SSL$", x)]
    check(not bad, "no TLS setting (ssl.*, truststore, keystore, SSL) in the example's code", bad)

    print("# test_pyspark_example.py: %d passed, %d failed" % tuple(RESULTS))
    return 1 if RESULTS[1] else 0


if __name__ == "__main__":
    sys.exit(main())
