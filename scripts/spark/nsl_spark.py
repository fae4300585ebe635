"""Shared pieces of nsl's Spark jobs: the session and the Arrow pipe to `nsl worker`.

Every task runs the release `nsl` binary found on PATH (or in $NSL_BIN) on the executors: each
partition's Arrow record batches are written to `nsl worker TASK` as an Arrow IPC stream on stdin
and its stdout, another IPC stream, becomes the partition's output (`mapInArrow`). Nothing travels
as text lines; a failed worker fails the task with the worker's own error message.
"""

import os
import shutil
import subprocess
import threading

import pyarrow as pa


def nsl_binary():
    """The nsl executable: $NSL_BIN, else `nsl` on PATH."""
    path = os.environ.get("NSL_BIN") or shutil.which("nsl")
    if not path:
        raise RuntimeError("the nsl binary is neither in $NSL_BIN nor on PATH (ship it to the executors, "
                           "see docs/scaling.md)")
    return path


def session(app, master=None, partitions=None, conf=()):
    """A SparkSession bound to 127.0.0.1 with the UI off when `master` is local (CI and laptops);
    on a cluster (`master` None, spark-submit decides) only the Arrow settings are added."""
    from pyspark.sql import SparkSession

    if master is not None and master.startswith("local"):
        # Before the JVM starts: bind to the loopback, whatever the host name resolves to.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("SPARK_LOCAL_HOSTNAME", "localhost")
    b = SparkSession.builder.appName(app)
    if master:
        b = b.master(master)
    if master is not None and master.startswith("local"):
        b = (b.config("spark.ui.enabled", "false")
              .config("spark.driver.host", "127.0.0.1")
              .config("spark.driver.bindAddress", "127.0.0.1"))
    b = b.config("spark.sql.execution.arrow.maxRecordsPerBatch", "8192").config("spark.ui.showConsoleProgress", "false")
    if partitions:
        b = b.config("spark.sql.shuffle.partitions", str(partitions))
    for k, v in conf:
        b = b.config(k, v)
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    # The executors' Python imports this module to run the workers.
    spark.sparkContext.addPyFile(os.path.abspath(__file__))
    return spark


def run_worker(args, batches):
    """Pipes `batches` (an iterator of pyarrow RecordBatches) through `nsl worker *args` and yields
    its output batches. An empty partition starts no process and yields nothing."""
    it = iter(batches)
    first = next(it, None)
    if first is None:
        return
    cmd = [nsl_binary(), "worker", *args]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    failure = []
    stderr = []

    def feed():
        try:
            with pa.ipc.new_stream(proc.stdin, first.schema) as w:
                w.write_batch(first)
                for b in it:
                    w.write_batch(b)
        except BaseException as e:  # a broken pipe when the worker failed: reported below
            failure.append(e)
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    def drain():
        stderr.append(proc.stderr.read())

    feeder = threading.Thread(target=feed, daemon=True)
    errors = threading.Thread(target=drain, daemon=True)
    feeder.start()
    errors.start()
    done = False
    broken = None
    try:
        for b in pa.ipc.open_stream(proc.stdout):
            yield b
        done = True
    except pa.ArrowInvalid as e:  # the worker failed mid-stream (or wrote no stream): its stderr says why
        broken = e
    finally:
        if not done and broken is None and proc.poll() is None:
            proc.kill()  # the consumer stopped early or failed: do not leave the worker blocked
        feeder.join()
        rc = proc.wait()
        errors.join()
        proc.stdout.close()
        proc.stderr.close()
    message = b"".join(stderr).decode(errors="replace").strip()
    if rc != 0 or broken is not None:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {rc}): {message or broken}")
    if failure:
        raise RuntimeError(f"feeding {' '.join(cmd)}: {failure[0]!r}")


def worker(*args):
    """A `mapInArrow` function running `nsl worker *args` on each partition."""
    args = [str(a) for a in args]

    def f(batches):
        yield from run_worker(args, batches)

    return f


def worker_local(args, table):
    """Runs `nsl worker *args` on the driver with a pyarrow Table as input; returns its stdout."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    r = subprocess.run([nsl_binary(), "worker", *[str(a) for a in args]], input=sink.getvalue().to_pybytes(),
                       capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"nsl worker {' '.join(map(str, args))} failed: {r.stderr.decode(errors='replace')}")
    return r.stdout


# Spark DDL of the graph edges nsl reads back (nsl's graph schema; `kind` as plain strings).
EDGE_SCHEMA = "source string, target string, weight float, kind string"
