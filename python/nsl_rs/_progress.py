"""Progress of ``fit`` and ``evaluate``: the user's callback and the default display (tqdm, or a
line per epoch and per attack stage)."""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Optional

Callback = Callable[[dict], Any]


def stage(event: dict) -> str:
    """An attack event's stage, as ``nsl evaluate``'s bar names it: ``apgd-ce ε=0.3``."""
    return f"{event['attack']} ε={event['epsilon']:g}"


class EpochLines:
    """The default display without tqdm: one line per epoch on ``sys.stdout`` (a notebook shows
    it under the cell); under attack (``evaluate``), a line when a stage ends and, as ``nsl
    evaluate`` without a terminal, every 10 s between."""

    EVERY = 10.0

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream
        self.started: dict = {}
        self.last = time.monotonic()

    def attack(self, event: dict) -> None:
        now = time.monotonic()
        name = stage(event)
        if name not in self.started:
            self.started[name] = self.last = now
        started = self.started[name]
        done, total = event["done"], event["total"]
        if done < total and now - self.last < self.EVERY:
            return
        self.last = now
        share = done / total if total else 1.0
        print(f"{name}: {share:.0%} ({done}/{total}), {now - started:.1f} s", file=self.stream or sys.stdout, flush=True)

    def __call__(self, event: dict) -> None:
        if event.get("event") == "attack":
            self.attack(event)
            return
        if event.get("event") != "epoch":
            return
        parts = [f"epoch {event['epoch']}/{event['epochs']}", f"loss {event['loss']:.4f}"]
        for key in ("accuracy", "validation_accuracy", "validation_loss"):
            value = event.get(key)
            if value is not None:
                parts.append(f"{key.replace('_', ' ')} {value:.4f}")
        parts.append(f"{event['seconds']:.2f} s")
        stream = self.stream or sys.stdout
        print("  ".join(parts), file=stream, flush=True)

    def close(self) -> None:
        pass


class EpochBar:
    """The default display with tqdm installed: a bar over the batches of each epoch, and over
    each attack stage's steps (``evaluate``)."""

    def __init__(self, tqdm: Any) -> None:
        self.tqdm = tqdm
        self.bar = None

    def __call__(self, event: dict) -> None:
        if event.get("event") == "attack":
            name = stage(event)
            if self.bar is None or self.bar.desc != name:
                if self.bar is not None:
                    self.bar.close()
                self.bar = self.tqdm(total=event["total"], desc=name, leave=True)
            self.bar.update(event["done"] - self.bar.n)
            if event["done"] >= event["total"]:
                self.bar.close()
                self.bar = None
        elif event.get("event") == "batch":
            if self.bar is None or event["batch"] == 1:
                if self.bar is not None:
                    self.bar.close()
                self.bar = self.tqdm(total=event["batches"], desc=f"epoch {event['epoch']}/{event['epochs']}", leave=True)
            self.bar.update(1)
        elif event.get("event") == "epoch" and self.bar is not None:
            postfix = {"loss": f"{event['loss']:.4f}"}
            if event.get("validation_accuracy") is not None:
                postfix["val_acc"] = f"{event['validation_accuracy']:.4f}"
            self.bar.set_postfix(postfix)
            self.bar.close()
            self.bar = None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def display(verbose: Any) -> Optional[Any]:
    """The default display for ``verbose``: None (0/False), tqdm's bar when tqdm is installed and
    ``verbose`` is True or ``"tqdm"``, else epoch lines."""
    if not verbose:
        return None
    if verbose is True or verbose == "tqdm":
        try:
            from tqdm.auto import tqdm  # type: ignore
        except ImportError:
            return EpochLines()
        return EpochBar(tqdm)
    return EpochLines()


class Progress:
    """What the extension calls: the user's callback, then the display. Batch events are sent only
    when someone wants them (tqdm's bar or a callback that asked with ``callback_batches=True``);
    attack events (``evaluate``) always, at most every 100 ms per stage plus its start and end."""

    def __init__(self, callback: Optional[Callback], verbose: Any, batches: bool) -> None:
        self.callback = callback
        self.display = display(verbose)
        self.batches = batches or isinstance(self.display, EpochBar)

    @property
    def active(self) -> bool:
        """Whether anyone looks at the events (else the extension sends none)."""
        return self.display is not None or self.callback is not None

    def __call__(self, event: dict) -> None:
        if self.display is not None:
            self.display(event)
        if self.callback is not None and (event.get("event") != "batch" or self.batches):
            self.callback(event)

    def close(self) -> None:
        if self.display is not None:
            self.display.close()
