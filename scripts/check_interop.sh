#!/usr/bin/env bash
# Checks that files written by nsl open as they are in the Python ecosystem: the Parquet samples and
# graph tables in pyarrow (with the documented schemas and metadata) and the GraphML export in networkx,
# with the counts nsl reports. Uses the release binary (`cargo build --release` first, which the test run has already done); skips, loudly, if
# pyarrow/networkx are not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
nsl=target/release/nsl
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if ! python3 -c 'import pyarrow, networkx' 2>/dev/null; then
  echo "SKIPPED: pyarrow/networkx not installed (python3 -m pip install pyarrow networkx)"
  exit 0
fi

$nsl convert --content datasets/cora/cora.content.gz --cites datasets/cora/cora.cites.gz \
  --samples "$out/cora.parquet" --graph "$out/cora_graph.parquet"
$nsl graph export "$out/cora_graph.parquet" --format graphml --output "$out/cora.graphml"
$nsl graph stats "$out/cora_graph.parquet" --samples "$out/cora.parquet" --json > "$out/stats.json"

python3 - "$out" <<'PY'
import json, sys
import pyarrow as pa, pyarrow.parquet as pq, networkx as nx
out = sys.argv[1]
g = pq.read_table(f"{out}/cora_graph.parquet")
expected = pa.schema([pa.field("source", pa.string(), nullable=False), pa.field("target", pa.string(), nullable=False),
                      pa.field("weight", pa.float32(), nullable=False),
                      pa.field("kind", pa.dictionary(pa.int8(), pa.string()), nullable=False)])
assert g.schema.remove_metadata().equals(expected, check_metadata=False), g.schema
meta = {k.decode(): v.decode() for k, v in pq.ParquetFile(f"{out}/cora_graph.parquet").metadata.metadata.items()}
assert meta["nsl.format_version"] == "1" and meta["nsl.directed"] == "false", meta
assert g.num_rows == 10556, g.num_rows
assert set(g.column("kind").to_pylist()) == {"explicit"}
s = pq.read_table(f"{out}/cora.parquet")
assert s.num_rows == 2708 and s.schema.field("id").type == pa.string(), s.schema
assert pa.types.is_fixed_size_list(s.schema.field("features").type) and s.schema.field("features").type.list_size == 1433
df = g.to_pandas()  # pandas reads it as it is
assert len(df) == 10556
G = nx.read_graphml(f"{out}/cora.graphml")
stats = json.load(open(f"{out}/stats.json"))
assert G.number_of_nodes() == 2708 == stats["nodes"], (G.number_of_nodes(), stats["nodes"])
assert G.number_of_edges() == 5278, G.number_of_edges()
assert nx.number_connected_components(G) == stats["components"], (nx.number_connected_components(G), stats["components"])
print(f"interop ok: pyarrow schema + metadata, pandas {len(df)} rows, networkx {G.number_of_nodes()} nodes / "
      f"{G.number_of_edges()} edges / {nx.number_connected_components(G)} components")
PY
