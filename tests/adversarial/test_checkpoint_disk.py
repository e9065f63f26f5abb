"""A DevBox cannot make the host keep more of its data than the documented limits: the
workspace checkpoint (kept after the DevBox is gone, for `from_run`) has its own cap,
FERRY_MAX_CHECKPOINT_BYTES; over it, nothing is kept and the Run says so. Found by an
attacker review (random data does not compress: each Run could leave 2 GiB)."""

from __future__ import annotations

from pathlib import Path

from tests.integration.harness import FerryStack
from tests.integration.test_repos_review import make_origin

MiB = 1024 * 1024


def test_a_runs_persisted_data_stays_within_its_limits(tmp_path: Path, docker_client) -> None:
    stack = FerryStack(tmp_path / "data", env={
        "FERRY_MAX_ARTIFACTS_BYTES": str(MiB), "FERRY_MAX_DIFF_BYTES": str(MiB),
        "FERRY_MAX_OUTPUT_PER_RUN": str(MiB), "FERRY_MAX_CHECKPOINT_BYTES": str(MiB)})
    try:
        stack.start()
        origin = make_origin(tmp_path)
        run = stack.create_run("head -c 41943040 /dev/urandom > blob.bin", repo=str(origin),
                               keep_alive="0s")
        done = stack.wait_status(run["id"], {"completed", "failed"}, timeout=180)
        assert done["status"] == "completed", done["error"]
        notes = [n for a in done["attempts"] for n in a["notes"]]
        assert any("FERRY_MAX_CHECKPOINT_BYTES" in n for n in notes), notes
        store = stack.settings.artifacts_dir / "runs" / run["id"]
        sizes = {p.relative_to(store).as_posix(): p.stat().st_size
                 for p in store.rglob("*") if p.is_file()}
        total = sum(sizes.values())
        assert total <= 4 * MiB, f"the Run left {total / MiB:.1f} MiB on the host: {sizes}"
        assert not (store / "checkpoint").exists() or not any((store / "checkpoint").iterdir())
        # A Run from it starts from the repository, and says why.
        again = stack.create_run("ls", from_run=run["id"], keep_alive="0s")
        second = stack.wait_status(again["id"], {"completed", "failed"}, timeout=120)
        assert second["status"] == "completed", second["error"]
        assert second["workspace"]["restored_from"] is None
    finally:
        stack.stop()
