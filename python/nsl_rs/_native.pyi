"""Type stubs of nsl_rs._native, the Rust extension module (use the functions of nsl_rs instead)."""

from typing import List, Optional, Tuple

import numpy as np
import numpy.typing as npt

def build_edges(
    embeddings: npt.NDArray[np.float32],
    threshold: float,
    lsh_splits: int,
    lsh_rounds: int,
    seed: int,
    top_k: Optional[int],
    ids: Optional[List[str]] = None,
) -> Tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32]]: ...
def read_graph(
    path: str,
) -> Tuple[List[str], npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32], List[str]]: ...
def write_graph(
    sources: List[str], targets: List[str], weights: npt.NDArray[np.float32], kinds: List[str], path: str
) -> None: ...
def graph_stats_json(
    path: Optional[str] = None,
    edges: Optional[Tuple[List[str], List[str], npt.NDArray[np.float32], List[str]]] = None,
    samples: Optional[str] = None,
) -> str: ...
def pack_nbrs(
    samples_path: str,
    graph_path: str,
    output_path: str,
    max_neighbors: int,
    pool: Optional[str] = None,
    add_undirected: bool = False,
) -> Tuple[int, int, int, int]: ...
