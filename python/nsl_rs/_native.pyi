"""Type stubs of nsl_rs._native, the Rust extension module (use the functions of nsl_rs instead)."""

from typing import Any, Callable, Dict, List, Optional, Tuple

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
def read_samples_arrays(
    path: str, labels: Optional[str] = None
) -> Tuple[List[str], npt.NDArray[np.float32], Optional[npt.NDArray[np.uint32]], Optional[List[str]], List[int]]: ...
def read_cites(
    path: str,
) -> Tuple[List[str], npt.NDArray[np.uint32], npt.NDArray[np.uint32], npt.NDArray[np.float32], List[str]]: ...
def fit(
    settings: Dict[str, str],
    inputs: Dict[str, Dict[str, Any]],
    graph_path: Optional[str],
    graph_edges: Optional[Tuple[List[str], List[str], npt.NDArray[np.float32]]],
    progress: Optional[Callable[[Dict[str, Any]], Any]],
    checkpoint: Optional[str] = None,
    checkpoint_every: int = 1,
    resume: Optional[str] = None,
) -> Run: ...

def embed_file(
    run: str, samples: str, layer: Optional[str] = None
) -> Tuple[
    Tuple[List[str], npt.NDArray[np.float32], Optional[npt.NDArray[np.uint32]], Optional[List[str]], List[int]],
    List[str],
]: ...

class Run:
    """A fitted (or loaded) run: the model, its metadata and history."""

    def predict(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]: ...
    def embed(self, x: npt.NDArray[np.float32], layer: Optional[str] = None) -> npt.NDArray[np.float32]: ...
    def evaluate(
        self,
        input: Dict[str, Any],
        settings: Dict[str, str],
        source: Optional[Run] = None,
        per_sample: bool = False,
        progress: Optional[Callable[[Dict[str, Any]], Any]] = None,
    ) -> Tuple[str, Optional[Dict[str, Any]]]: ...
    def save(self, path: str, python_meta: str) -> None: ...
    @staticmethod
    def load(path: str) -> Run: ...
    def meta_json(self) -> str: ...
    def history_json(self) -> str: ...
    def input_pointer(self) -> int: ...
