"""Bench of erasure's file rewrites: masking lines of a 100 MB payload and dropping rows of its Parquet copy.

Run: .venv/bin/python bench/erasure.py [--mb 100] [--repeat 3] [--folder /tmp/x]
Each figure is printed beside a floor measured in the same run on the same file: a plain
`shutil.copyfile` for a payload (and, for gzip, a plain gunzip + gzip of the same level), a plain
pyarrow read + write of every row group for the Parquet copy. The payload is NDJSON of records with 20
features as a source sends them; the Parquet copy is made by ingest's own converter. Three records are
erased (lines near the start, the middle and the end), so the whole file is read and rewritten.
No database is needed: the file code is pure (trainingsets/erasure_files.py).
"""
from __future__ import annotations

import argparse
import gzip
import hmac
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collection.columnar import NdjsonParquetCopy  # noqa: E402
from collection.parsing import PayloadParser  # noqa: E402
from trainingsets import erasure_files  # noqa: E402

KEY = b"bench-secret"
SOURCE_ID = 1


def say(message: str) -> None:
    print(message, flush=True)


def identity(external_id: str) -> str:
    """As trainingsets.identity.record_identity computes it (without Django settings)."""
    return hmac.digest(KEY, f"{SOURCE_ID}\x00{external_id}".encode(), "sha256").hex()


def make_rows(mb: int, seed: int = 7):
    rng = random.Random(seed)
    target, size, i = mb * 1024 * 1024, 0, 0
    countries = ["DE", "FR", "NL", "PL", "ES", "IT"]
    while size < target:
        features = {f"f{k}": round(rng.gauss(10, 3), 4) for k in range(12)}
        features.update({f"c{k}": rng.choice(countries) for k in range(4)})
        features.update({"items": rng.randint(1, 9), "returning": rng.random() < 0.4,
                         "note": f"customer note {rng.getrandbits(64):x}", "device": rng.choice(["ios", "web"])})
        row = {"external_id": f"order-{i:08d}", "features": features, "observed_at": "2026-11-01T10:00:00+00:00",
               "label": rng.choice(["ok", "fraud"])}
        line = orjson.dumps(row)
        size += len(line) + 1
        i += 1
        yield row, line


def write_payloads(folder: Path, mb: int) -> tuple[dict, int]:
    """The same records as NDJSON, gzipped NDJSON, CSV and (capped as the API caps it) a JSON array."""
    ndjson = folder / "payload.ndjson"
    csv_path = folder / "payload.csv"
    json_path = folder / "payload.json"
    count = 0
    json_cap = 64 * 1024 * 1024
    json_size = 2
    with open(ndjson, "wb") as nd, open(csv_path, "w", newline="") as cs, open(json_path, "wb") as js:
        js.write(b"[")
        header = None
        for row, line in make_rows(mb):
            nd.write(line + b"\n")
            if header is None:
                header = ["external_id", *row["features"], "observed_at", "label"]
                cs.write(",".join(header) + "\r\n")
            cs.write(",".join([row["external_id"], *(str(v) for v in row["features"].values()), row["observed_at"],
                               row["label"]]) + "\r\n")
            if json_size + len(line) + 1 < json_cap:
                js.write((b"," if count else b"") + line)
                json_size += len(line) + 1
                json_count = count + 1
            count += 1
        js.write(b"]")
    with open(ndjson, "rb") as src, gzip.open(folder / "payload.ndjson.gz", "wb", compresslevel=6) as out:
        shutil.copyfileobj(src, out, 1 << 20)
    return {"ndjson": (ndjson, count), "csv": (csv_path, count), "json": (json_path, json_count),
            "ndjson.gz": (folder / "payload.ndjson.gz", count)}, count


def parquet_copy(ndjson: Path, target: Path) -> None:
    """The batch's Parquet copy, made by ingest's converter from the column types the parser finds."""
    with open(ndjson, "rb") as stream:
        parser = PayloadParser(stream, "ndjson", max_json_bytes=1 << 30)
        for _ in parser:
            pass
    copy = NdjsonParquetCopy(ndjson, gzipped=False, target=target, columns=parser.columns, chunk_rows=50_000)
    copy.run()
    if copy.error:
        raise copy.error


def timed(fn, repeat: int, prepare=None) -> float:
    times = []
    for _ in range(repeat):
        if prepare:
            prepare()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def line_of(path: Path, fmt: str, count: int) -> list[int]:
    """Line numbers (positions for JSON) of three records: near the start, the middle and the end."""
    picks = [count // 100, count // 2, count - 2]
    if fmt == "json":
        return [p + 1 for p in picks]
    offset = 2 if fmt == "csv" else 1  # CSV: the header is line 1
    return [p + offset for p in picks]


def bench_payload(name: str, path: Path, count: int, work: Path, repeat: int, content_mb: float = 0) -> dict:
    fmt, gzipped = name.split(".")[0], name.endswith(".gz")
    lines = line_of(path, fmt, count)
    erased = {f"order-{n - (2 if fmt == 'csv' else 1):08d}" for n in lines}
    wanted = {identity(e) for e in erased}
    size = path.stat().st_size
    copy = work / f"copy-{name}"

    def mask() -> erasure_files.PayloadMasked:
        return erasure_files.mask_payload(copy, fmt=fmt, gzipped=gzipped, lines=lines, erasure_id=1,
                                          matches=lambda e: identity(e) in wanted)

    floor = timed(lambda: shutil.copyfile(path, work / "floor"), repeat)
    seconds = timed(mask, repeat, prepare=lambda: shutil.copyfile(path, copy))
    shutil.copyfile(path, copy)
    result = mask()
    assert result.masked == 3 and result.external_ids == erased, (result, erased)
    mb = size / 1e6
    figures = {"mb": mb, "mask": mb / seconds, "copyfile": mb / floor}
    content = f", {content_mb / seconds:,.0f} MB/s of content ({content_mb:,.0f} MB)" if gzipped else ""
    say(f"payload {name} ({mb:,.0f} MB, {count:,} records): mask {figures['mask']:,.0f} MB/s{content}; "
        f"copyfile {figures['copyfile']:,.0f} MB/s; ratio {seconds / floor:.1f}x the copy's time")
    if gzipped:
        def regzip() -> None:
            with gzip.open(path, "rb") as src, gzip.open(work / "floor", "wb", compresslevel=6) as out:
                shutil.copyfileobj(src, out, 1 << 20)
        recompress = timed(regzip, repeat)
        figures["gunzip_gzip"] = mb / recompress
        say(f"payload {name}: gunzip + gzip (level 6) floor {figures['gunzip_gzip']:,.0f} MB/s; "
            f"ratio {seconds / recompress:.2f}x its time")
    return figures


def bench_parquet(path: Path, count: int, work: Path, repeat: int) -> dict:
    copy = work / "copy.parquet"
    erased = {f"order-{n:08d}" for n in (count // 100, count // 2, count - 2)}
    wanted = {identity(e) for e in erased}

    def plain() -> None:
        with pq.ParquetFile(path) as source, pq.ParquetWriter(work / "floor.parquet", source.schema_arrow,
                                                               compression="zstd") as out:
            for index in range(source.num_row_groups):
                out.write_table(source.read_row_group(index))

    floor = timed(plain, repeat)
    by_id = timed(lambda: erasure_files.drop_parquet_rows(copy, external_ids=erased), repeat,
                  prepare=lambda: shutil.copyfile(path, copy))
    by_hash = timed(lambda: erasure_files.drop_parquet_rows(copy, matches=lambda e: identity(e) in wanted), repeat,
                    prepare=lambda: shutil.copyfile(path, copy))
    shutil.copyfile(path, copy)
    assert erasure_files.drop_parquet_rows(copy, external_ids=erased).rows_removed == 3
    groups = pq.ParquetFile(path).metadata.num_row_groups
    figures = {"rows": count, "by_id": count / by_id, "by_hash": count / by_hash, "floor": count / floor}
    say(f"parquet copy ({count:,} rows, {groups} row groups, {path.stat().st_size / 1e6:,.0f} MB): drop by id "
        f"{figures['by_id']:,.0f} rows/s; by keyed hash of every id {figures['by_hash']:,.0f} rows/s; "
        f"read + write floor {figures['floor']:,.0f} rows/s; ratio {by_id / floor:.2f}x (by id), "
        f"{by_hash / floor:.2f}x (by hash) the floor's time")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="size of the NDJSON payload")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--folder", help="where the files go (default: a temporary folder, removed after)")
    args = parser.parse_args()
    folder = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="sieve-erasure-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        say(f"writing a {args.mb} MB payload in {folder} ...")
        payloads, count = write_payloads(folder, args.mb)
        parquet_copy(payloads["ndjson"][0], folder / "copy-source.parquet")
        content_mb = payloads["ndjson"][0].stat().st_size / 1e6
        for name, (path, n) in payloads.items():
            bench_payload(name, path, n, folder, args.repeat, content_mb)
        bench_parquet(folder / "copy-source.parquet", count, folder, args.repeat)
    finally:
        if not args.folder:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
