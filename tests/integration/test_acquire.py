"""Paper-profile acquisition end to end against a loopback server, plus the KGCN conversion.

Every expected value below is derived by hand from the small fixtures written in this file
(see the comments next to them), or checked against an independent naive implementation.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import logging
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers.httpfixtures import FakeClock, Reply, http_server  # noqa: F401  (fixture import)
from kgcl_lib.data import sources as srcs
from kgcl_lib.data.acquire import (
    PAPER_TABLE1,
    ApiKeyError,
    convert_bookcrossing,
    convert_kg,
    fetch_cli,
    fetch_dataset,
    isbn10_to_13,
    kgcn_counts,
    movielens_title,
    read_bx_ratings,
    sample_negatives,
    wikipedia_candidates,
)
from kgcl_lib.data.dataset import DatasetError
from kgcl_lib.data.download import ChecksumError, HttpClient, RetryPolicy


# Fixtures: raw files shaped like the real ones ------------------------------------------------------
def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


MOVIES_CSV = b"""movieId,title,genres
1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy
2,Jumanji (1995),Adventure|Children|Fantasy
3,"American President, The (1995)",Comedy|Drama|Romance
4,Waiting to Exhale (1995),Comedy|Drama|Romance
5,Father of the Bride Part II (1995),Comedy
6,Heat (1995),Action|Crime|Thriller
7,Sabrina (1995),Comedy|Romance
"""
LINKS_CSV = b"""movieId,imdbId,tmdbId
1,0114709,862
2,0113497,8844
3,0112346,9087
4,0114885,31357
5,0113041,
6,0113277,949
7,0114319,11860
"""
RATINGS_CSV = b"userId,movieId,rating,timestamp\n1,1,3.5,1112486027\n1,2,4.0,1112484676\n2,6,5.0,974820889\n"
# KGCN's mapping lists movies 1..6 (7 is not in the KG, so no synopsis is asked for it).
ITEM2ENT = b"1\t0\n2\t1\n3\t2\n4\t3\n5\t4\n6\t5\n"
KG_TXT = b"0\tfilm.film.genre\t6\n1\tfilm.film.genre\t6\n5\tfilm.film.director\t7\n"

TMDB_KEY = "0123456789abcdef0123456789abcdef"  # v3 keys are 32 hex characters


def serve_movies(server, *, with_wiki: bool = True) -> None:
    server.file("/grouplens/ml-20m.zip", ML20M_ZIP)
    server.file("/kgcn/movie/item_index2entity_id.txt", ITEM2ENT)
    server.file("/kgcn/movie/kg.txt", KG_TXT)
    t = "/tmdb/3/movie/"
    server.json(t + "862", {"id": 862, "title": "Toy Story", "overview": "Led by Woody, Andy's toys live happily in his room."})
    server.sequence(
        t + "8844",
        [
            Reply(429, b'{"status_code": 25, "status_message": "Your request count is over the allowed limit."}', {"Retry-After": "2"}),
            Reply(200, json.dumps({"id": 8844, "overview": "When siblings Judy and Peter\tdiscover an\nenchanted board game."}).encode()),
        ],
    )
    server.json(t + "9087", {"success": False, "status_code": 34, "status_message": "The resource you requested could not be found."}, status=404)
    server.raw(t + "31357", b'{"id": 31357, "overview": "Cheated on, mistreated', headers={"Content-Type": "application/json"})
    server.json(t + "949", {"id": 949, "overview": ""})
    if with_wiki:
        w = "/wiki/"
        server.json(w + "The_American_President_(film)", {"type": "standard", "title": "The American President",
                    "description": "1995 film by Rob Reiner", "extract": "The American President is a 1995 American romantic comedy-drama film."})
        server.json(w + "Heat_(1995_film)", {"type": "standard", "title": "Heat", "description": "1995 film by Michael Mann",
                    "extract": "Heat is a 1995 American crime film written and directed by Michael Mann."})
        server.json(w + "Waiting_to_Exhale_(1995_film)", {"type": "disambiguation", "title": "Waiting to Exhale", "extract": "may refer to"})
        server.json(w + "Waiting_to_Exhale", {"type": "standard", "description": "novel by Terry McMillan",
                    "extract": "Waiting to Exhale is a 1992 novel by Terry McMillan."})
        server.json(w + "Father_of_the_Bride_Part_II_(film)", {"type": "standard", "description": "1991 film",
                    "extract": "A different film."})
        server.json(w + "Toy_Story_(1995_film)", {"type": "standard", "description": "1995 animated film",
                    "extract": "Toy Story is a 1995 American animated comedy film."})
        server.json(w + "Jumanji_(1995_film)", {"type": "standard", "description": "1995 film by Joe Johnston",
                    "extract": "Jumanji is a 1995 American fantasy adventure film."})


ML20M_ZIP = zip_bytes({"ml-20m/ratings.csv": RATINGS_CSV, "ml-20m/movies.csv": MOVIES_CSV, "ml-20m/links.csv": LINKS_CSV, "ml-20m/README.txt": b"fixture"})

# Book-Crossing: satori ids deliberately differ from line numbers, so the re-indexing shows.
BOOK_MAP = b"0195153448\t7\n0002005018\t5\n0060973129\t9\n0374157065\t6\n"
BX_RATINGS = b'''"User-ID";"ISBN";"Book-Rating"
"276725";"0002005018";"0"
"276726";"9999999999";"5"
"276727";"0195153448";"7"
"276725";"0060973129";"5"
"276727";"0002005018";"0"
"276725";"0002005018";"3"
"276728";"0374157065";"10"
'''
KG_REHASHED = b"7\tbook.author\t100\n100\tpeople.nationality\t9\n6\tbook.author\t101\n101\tbook.genre\t100\n5\tbook.genre\t102\n"
BX_BOOKS = (
    '"ISBN";"Book-Title";"Book-Author";"Year-Of-Publication";"Publisher";"Image-URL-S";"Image-URL-M";"Image-URL-L"\n'
    '"0195153448";"Classical Mythology";"Mark P. O. Morford";"2002";"Oxford University Press";"s";"m";"l"\n'
    '"0002005018";"Clara Callan";"Richard Bruce Wright";"2001";"HarperFlamingo Canada";"s";"m";"l"\n'
    '"0060973129";"Décision in Normandy";"Carlo D\'Este";"1991";"HarperPerennial";"s";"m";"l"\n'
    '"0374157065";"Flu: The \\"Great\\" Pandemic &amp; Search";"Gina Bari Kolata";"0";"Farrar Straus Giroux";"s";"m";"l"\n'
    '"0399135782";"a";"b";"1991";"c";"d";"e";"f";"g";"h"\n'
).encode("latin-1")
BX_DUMP_ZIP = zip_bytes({"BX-Books.csv": BX_BOOKS, "BX-Users.csv": b"x", "BX-Book-Ratings.csv": BX_RATINGS})


def gb_volume(isbn, **info):
    return {"kind": "books#volume", "volumeInfo": {"industryIdentifiers": [{"type": "ISBN_10", "identifier": isbn}], **info}}


def serve_books(server) -> None:
    server.file("/ripplenet/book/BX-Book-Ratings.csv", BX_RATINGS)
    server.file("/ripplenet/book/item_index2entity_id_rehashed.txt", BOOK_MAP)
    server.file("/ripplenet/book/kg_rehashed.txt", KG_REHASHED)
    server.file("/bx/BX-CSV-Dump.zip", BX_DUMP_ZIP)
    g = "/gbooks/volumes?q=isbn:"
    server.json(g + "0195153448", {"kind": "books#volumes", "totalItems": 1, "items": [gb_volume(
        "0195153448", title="Classical Mythology", authors=["Mark P. O. Morford", "Robert J. Lenardon"], publishedDate="2003",
        categories=["Social Science"], description="<p>Provides an <b>introduction</b> to classical myths</p>")]})
    server.json(g + "0002005018", {"kind": "books#volumes", "totalItems": 0})
    server.sequence(g + "0060973129", [
        Reply(429, b'{"error": {"code": 429, "message": "Too many requests"}}', {"Retry-After": "1"}),
        Reply(200, json.dumps({"kind": "books#volumes", "totalItems": 2, "items": [
            gb_volume("1111111111", title="Something else", categories=["Poetry"], description="wrong book"),
            gb_volume("0060973129", title="Decision in Normandy", categories=["History"], description="A tale of\nNormandy."),
        ]}).encode()),
    ])
    server.raw(g + "0374157065", b'{"kind": "books#volumes", "items": [', headers={"Content-Type": "application/json"})


def overrides(server) -> dict:
    return {
        "GROUPLENS": server.url("/grouplens/"),
        "KGCN_MOVIE": server.url("/kgcn/movie/"),
        "TMDB": server.url("/tmdb/3/"),
        "WIKIPEDIA": server.url("/wiki/"),
        "RIPPLENET_BOOK": server.url("/ripplenet/book/"),
        "BX_DUMP": server.url("/bx/"),
        "GOOGLE_BOOKS": server.url("/gbooks/"),
        "GOODREADS": server.url("/goodreads/"),
    }


@pytest.fixture
def env(monkeypatch, tmp_path):
    """Isolated cache dir, no API keys, the fixture zip's md5 pinned like the real one."""
    monkeypatch.setenv("KGCL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TMDB_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_BOOKS_API_KEY", raising=False)
    import hashlib

    g = srcs.SOURCES["GROUPLENS"]
    monkeypatch.setitem(srcs.SOURCES, "GROUPLENS", dataclasses.replace(g, files=(srcs.RemoteFile("ml-20m.zip", md5=hashlib.md5(ML20M_ZIP).hexdigest()),)))
    return tmp_path


def fake_client(server, clock=None) -> HttpClient:
    clock = clock or FakeClock()
    return HttpClient(
        retry=RetryPolicy(max_retries=2, backoff_base_s=0.1, timeout_s=10),
        limits=srcs.rate_limits(overrides(server)),
        sleep=clock.sleep,
        clock=clock.monotonic,
        now=clock.now,
        rng=np.random.default_rng(0),
    )


def fetch(server, name, dest, *, client=None, **kw):
    return fetch_dataset(name, dest, sources=overrides(server), client=client or fake_client(server), workers=kw.pop("workers", 2),
                         progress=False, verbose=kw.pop("verbose", False), manifest=dest.parent / "manifest.json", **kw)


def read_tsv(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3)


def snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != "coverage.json"}


# Movies ----------------------------------------------------------------------------------------
def test_full_fetch_ml20m_with_tmdb(http_server, env, monkeypatch, caplog):
    monkeypatch.setenv("TMDB_API_KEY", TMDB_KEY)
    serve_movies(http_server)
    dest = env / "ml-20m"
    clock = FakeClock()
    with caplog.at_level(logging.WARNING):
        out = fetch(http_server, "ml-20m", dest, client=fake_client(http_server, clock), movie_text="tmdb", verbose=True)
    assert out == dest
    for f, data in (("ratings.csv", RATINGS_CSV), ("movies.csv", MOVIES_CSV), ("links.csv", LINKS_CSV),
                    ("item_index2entity_id.txt", ITEM2ENT), ("kg.txt", KG_TXT)):
        assert (dest / f).read_bytes() == data, f
    syn = read_tsv(dest / "synopses.tsv")
    assert list(syn.columns) == ["item_id", "synopsis"]
    # 862 ok; 8844 ok after a 429 (tab/newline collapsed); 9087 404; 31357 malformed; 5 no tmdbId; 949 empty
    assert syn.values.tolist() == [
        ["1", "Led by Woody, Andy's toys live happily in his room."],
        ["2", "When siblings Judy and Peter discover an enchanted board game."],
    ]
    assert 2.0 in clock.sleeps  # Retry-After honoured
    assert "malformed JSON" in caplog.text
    miss = read_tsv(dest / "missing.tsv")
    reasons = dict(zip(miss["item_id"], miss["reason"]))
    assert set(reasons) == {"3", "4", "5", "6"}
    assert "404" in reasons["3"] and "not in TMDB" in reasons["3"]
    assert "malformed JSON" in reasons["4"]
    assert reasons["5"] == "no tmdbId in links.csv"
    assert reasons["6"] == "TMDB: empty overview"
    assert miss.set_index("item_id").loc["3", "title"] == "American President, The (1995)"
    cov = json.loads((dest / "coverage.json").read_text())
    assert cov["fields"]["synopsis"] == {"have": 2, "of": 6, "missing": 4, "by_source": {"tmdb": 2, "wikipedia": 0}}
    assert cov["table1"]["contents"]["ours"] == 6 and cov["table1"]["kg_triples"]["ours"] == 3
    assert "synopsis: 2 of 6; 4 missing (tmdb 2)" in cov["summary"]
    # the key travels in the query (v3) but never into the cache
    tm = http_server.requests("/tmdb/")
    assert all(f"api_key={TMDB_KEY}" in r.query for r in tm)
    assert TMDB_KEY not in (dest / ".kgcl-fetch" / "tmdb.jsonl").read_text()
    assert http_server.count("/wiki/") == 0
    n = http_server.count()
    assert n == 3 + 6  # zip + 2 KG files; TMDB 862, 8844 twice, 9087, 31357, 949

    before = snapshot(dest)
    fetch(http_server, "ml-20m", dest, movie_text="tmdb")
    assert http_server.count() == n  # a rerun makes zero requests
    assert snapshot(dest) == before
    assert json.loads((dest / "coverage.json").read_text())["requests"]["requests"] == 0


def test_tmdb_v4_token_goes_in_header(http_server, env, monkeypatch):
    token = "eyJhbGciOiJIUzI1NiJ9." + "x" * 80
    monkeypatch.setenv("TMDB_API_KEY", token)
    serve_movies(http_server)
    fetch(http_server, "ml-20m", env / "m", movie_text="tmdb")
    tm = http_server.requests("/tmdb/")
    assert tm and all(r.headers.get("Authorization") == f"Bearer {token}" and "api_key" not in r.query for r in tm)


def test_tmdb_plus_wikipedia_fills_gaps(http_server, env, monkeypatch):
    monkeypatch.setenv("TMDB_API_KEY", TMDB_KEY)
    serve_movies(http_server)
    dest = env / "m"
    fetch(http_server, "ml-20m", dest, movie_text="tmdb+wikipedia")
    syn = dict(read_tsv(dest / "synopses.tsv").values.tolist())
    # 3: "(1995 film)" 404, "(film)" is a 1995 film → accepted; 6: "(1995 film)" accepted;
    # 4: disambiguation, then 404, then a novel → rejected; 5: "(film)" is from 1991 → rejected.
    assert sorted(syn) == ["1", "2", "3", "6"]
    assert syn["3"].startswith("The American President is a 1995")
    cov = json.loads((dest / "coverage.json").read_text())["fields"]["synopsis"]
    assert cov["by_source"] == {"tmdb": 2, "wikipedia": 2} and cov["missing"] == 2
    assert http_server.count("/wiki/Toy_Story") == 0  # TMDB answered those


def test_missing_tmdb_key_strict_mode_gives_the_message(http_server, env):
    serve_movies(http_server)
    with pytest.raises(ApiKeyError) as e:
        fetch(http_server, "ml-20m", env / "m", movie_text="tmdb")
    assert "TMDB_API_KEY is not set" in str(e.value) and "themoviedb.org/settings/api" in str(e.value)
    assert http_server.count() == 0  # refused before any download


def test_missing_tmdb_key_auto_falls_back_to_wikipedia(http_server, env, capsys):
    serve_movies(http_server)
    dest = env / "m"
    fetch(http_server, "ml-20m", dest, movie_text="auto", verbose=True)
    err = capsys.readouterr().err
    assert "TMDB_API_KEY is not set" in err and "Falling back to Wikipedia" in err
    syn = dict(read_tsv(dest / "synopses.tsv").values.tolist())
    assert sorted(syn) == ["1", "2", "3", "6"]  # all from Wikipedia
    cov = json.loads((dest / "coverage.json").read_text())
    assert cov["fields"]["synopsis"]["by_source"] == {"tmdb": 0, "wikipedia": 4}
    assert any("TMDB_API_KEY missing" in n for n in cov["notes"])
    assert http_server.count("/tmdb/") == 0


def test_rejected_tmdb_key(http_server, env, monkeypatch):
    monkeypatch.setenv("TMDB_API_KEY", TMDB_KEY)
    serve_movies(http_server)
    http_server.json("/tmdb/3/movie/862", {"status_code": 7, "status_message": "Invalid API key"}, status=401)
    with pytest.raises(ApiKeyError, match="rejected TMDB_API_KEY.*401"):
        fetch(http_server, "ml-20m", env / "m", movie_text="tmdb", workers=1)


def test_pinned_checksum_mismatch_leaves_nothing(http_server, env, monkeypatch):
    serve_movies(http_server)
    g = srcs.SOURCES["GROUPLENS"]
    monkeypatch.setitem(srcs.SOURCES, "GROUPLENS", dataclasses.replace(g, files=(srcs.RemoteFile("ml-20m.zip", md5="0" * 32),)))
    dest = env / "m"
    with pytest.raises(ChecksumError, match="md5"):
        fetch(http_server, "ml-20m", dest)
    assert not list((dest / "raw").iterdir())
    assert not (dest / "ratings.csv").exists()


class Interrupting(HttpClient):
    """Raises KeyboardInterrupt on the ``stop_at``-th JSON request (like Ctrl-C mid-run)."""

    def __init__(self, stop_at: int, **kw):
        super().__init__(**kw)
        self.stop_at, self.calls = stop_at, 0

    def get_json(self, url, headers=None):
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        return super().get_json(url, headers)


def test_interrupted_run_resumes_without_repeating(http_server, env, monkeypatch):
    monkeypatch.setenv("TMDB_API_KEY", TMDB_KEY)
    serve_movies(http_server)
    dest = env / "m"
    clock = FakeClock()
    c = Interrupting(3, limits=srcs.rate_limits(overrides(http_server)), sleep=clock.sleep, clock=clock.monotonic, now=clock.now)
    with pytest.raises(KeyboardInterrupt):
        fetch(http_server, "ml-20m", dest, client=c, movie_text="tmdb", workers=1)
    assert not (dest / "synopses.tsv").exists()  # nothing half-written
    lines = (dest / ".kgcl-fetch" / "tmdb.jsonl").read_text().splitlines()
    assert [json.loads(x)["key"] for x in lines] == ["movie/862?language=en-US", "movie/8844?language=en-US"]
    seen = {r.path for r in http_server.requests("/tmdb/")}

    fetch(http_server, "ml-20m", dest, movie_text="tmdb", workers=1)
    second = [r.path for r in http_server.requests("/tmdb/")][len(http_server.requests("/tmdb/")) - 3:]
    assert sorted(second) == ["/tmdb/3/movie/31357", "/tmdb/3/movie/9087", "/tmdb/3/movie/949"]
    assert not seen & set(second)
    assert len(read_tsv(dest / "synopses.tsv")) == 2


def test_movielens_titles():
    assert movielens_title("American President, The (1995)") == ("The American President", 1995)
    assert movielens_title("City of Lost Children, The (Cité des enfants perdus, La) (1995)") == ("The City of Lost Children", 1995)
    assert movielens_title("Seven (a.k.a. Se7en) (1995)") == ("Seven", 1995)
    assert movielens_title("Misérables, Les (1995)") == ("Les Misérables", 1995)
    assert movielens_title("Homme et une femme, Un (1966)") == ("Un Homme et une femme", 1966)
    assert movielens_title("Face/Off (1997)") == ("Face/Off", 1997)
    assert movielens_title("Babylon 5") == ("Babylon 5", None)
    assert movielens_title("(500) Days of Summer (2009)") == ("(500) Days of Summer", 2009)
    assert wikipedia_candidates("Heat", 1995) == [("Heat (1995 film)", "year_film"), ("Heat (film)", "film"), ("Heat", "bare")]
    assert wikipedia_candidates("Heat", None) == [("Heat (film)", "film"), ("Heat", "bare")]


# Books ----------------------------------------------------------------------------------------------
def test_full_fetch_bookcrossing(http_server, env, caplog):
    serve_books(http_server)
    dest = env / "book-crossing"
    with caplog.at_level(logging.WARNING):
        fetch(http_server, "book-crossing", dest, seed=3)
    # Hand-derived (see BX_RATINGS): users 276725→0, 276727→1, 276728→2 (first appearance);
    # positives u0 {1, 2}, u1 {0, 1}, u2 {3}; negatives forced for u0 {0, 3} and u1 {2, 3}.
    r = pd.read_csv(dest / "ratings_final.txt", sep="\t", header=None).to_numpy()
    assert r[:, 0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert r[:, 2].tolist() == [1, 1, 0, 0, 1, 1, 0, 0, 1, 0]
    assert r[:2, 1].tolist() == [1, 2] and sorted(r[2:4, 1]) == [0, 3]
    assert r[4:6, 1].tolist() == [0, 1] and sorted(r[6:8, 1]) == [2, 3]
    assert r[8, 1] == 3 and r[9, 1] in (0, 1, 2)
    # KG: satori 7,5,9,6 are items 0..3; 100→4, 101→5, 102→6; relations in order of first use.
    kg = pd.read_csv(dest / "kg_final.txt", sep="\t", header=None).to_numpy()
    assert kg.tolist() == [[0, 0, 4], [4, 1, 2], [3, 0, 5], [5, 2, 4], [1, 2, 6]]
    assert (dest / "item_index2entity_id_rehashed.txt").read_text() == "0195153448\t0\n0002005018\t1\n0060973129\t2\n0374157065\t3\n"
    assert kgcn_counts(dest) == {"users": 3, "contents": 4, "uc_rows": 10, "entities": 7, "relations": 3, "kg_triples": 5}

    books = read_tsv(dest / "books.tsv")
    assert list(books.columns) == ["isbn", "title", "author", "year", "genres", "synopsis"]
    assert books.values.tolist() == [
        ["0195153448", "Classical Mythology", "Mark P. O. Morford", "2002", "Social Science", "Provides an introduction to classical myths"],
        ["0002005018", "Clara Callan", "Richard Bruce Wright", "2001", "", ""],
        ["0060973129", "Décision in Normandy", "Carlo D'Este", "1991", "History", "A tale of Normandy."],
        ["0374157065", 'Flu: The "Great" Pandemic & Search', "Gina Bari Kolata", "", "", ""],
    ]
    assert "malformed JSON" in caplog.text
    cov = json.loads((dest / "coverage.json").read_text())
    have = {k: v["have"] for k, v in cov["fields"].items()}
    assert have == {"title": 4, "author": 4, "year": 3, "genres": 2, "synopsis": 2}
    assert cov["table1"]["users"] == {"ours": 3, "paper": 17_860, "match": False}
    miss = read_tsv(dest / "missing.tsv")
    assert sorted(map(tuple, miss[["field", "item_id"]].values.tolist())) == sorted(
        [("genres", "0002005018"), ("synopsis", "0002005018"), ("year", "0374157065"), ("genres", "0374157065"), ("synopsis", "0374157065")]
    )
    assert miss.set_index(["field", "item_id"]).loc[("synopsis", "0002005018"), "reason"] == "Google Books: no volume for this ISBN"
    assert "malformed JSON" in miss.set_index(["field", "item_id"]).loc[("synopsis", "0374157065"), "reason"]
    n = http_server.count()
    assert http_server.count("/gbooks/") == 5  # four ISBNs, one retried after 429
    assert n == 3 + 1 + 5

    before = snapshot(dest)
    fetch(http_server, "book-crossing", dest, seed=3)
    assert http_server.count() == n  # rerun: zero requests, conversion skipped
    assert snapshot(dest) == before


def test_outputs_load_with_the_project_readers(http_server, env, monkeypatch):
    """Contract with kgcl_lib.data.readers: the fetched folders are what the readers expect."""
    readers = pytest.importorskip("kgcl_lib.data.readers")
    if not all(hasattr(readers, f) for f in ("read_kgcn", "read_ml20m_raw", "detect_format")):
        pytest.skip("readers API not available in this checkout")
    monkeypatch.setenv("TMDB_API_KEY", TMDB_KEY)
    serve_books(http_server)
    serve_movies(http_server, with_wiki=False)
    bx, ml = env / "book-crossing", env / "ml-20m"
    fetch(http_server, "book-crossing", bx, seed=0)
    fetch(http_server, "ml-20m", ml, movie_text="tmdb")
    assert readers.detect_format(bx) == "kgcn" and readers.detect_format(ml) == "ml20m-raw"
    ds = readers.read_kgcn(bx)
    assert ds.stats() == kgcn_counts(bx)
    assert ds.items["raw_id"].tolist() == ["0195153448", "0002005018", "0060973129", "0374157065"]
    assert ds.items["title"].tolist()[0] == "Classical Mythology"
    syn = readers.read_ml20m_raw(ml).items.set_index("raw_id")["synopsis"]
    assert syn.loc["1"].startswith("Led by Woody") and pd.isna(syn.loc["3"])


def test_bookcrossing_with_goodreads(http_server, env):
    serve_books(http_server)
    books = [
        {"isbn": "0002005018", "isbn13": "9780002005012", "title": "Clara Callan", "description": "Goodreads <i>blurb</i>.", "book_id": "11", "publication_year": "2001"},
        {"isbn": "", "isbn13": isbn10_to_13("0374157065"), "title": "Flu", "description": "Flu blurb", "book_id": "12", "publication_year": "1999"},
        {"isbn": "1234567890", "isbn13": "", "title": "Unrelated", "description": "x", "book_id": "13", "publication_year": "2000"},
    ]
    genres = [
        {"book_id": "11", "genres": {"history, historical fiction, biography": 3, "fiction": 10}},
        {"book_id": "13", "genres": {"poetry": 1}},
    ]
    http_server.file("/goodreads/goodreads_books.json.gz", gzip.compress("".join(json.dumps(b) + "\n" for b in books).encode()))
    http_server.file("/goodreads/goodreads_book_genres_initial.json.gz", gzip.compress("".join(json.dumps(g) + "\n" for g in genres).encode()))
    dest = env / "bx"
    fetch(http_server, "bx", dest, goodreads=True)
    b = read_tsv(dest / "books.tsv").set_index("isbn")
    assert b.loc["0002005018", "genres"] == "fiction|history, historical fiction, biography"  # by shelf count
    assert b.loc["0002005018", "synopsis"] == "Goodreads blurb ."  # tags removed, whitespace collapsed
    assert b.loc["0374157065", "synopsis"] == "Flu blurb" and b.loc["0374157065", "year"] == "1999"  # matched by ISBN-13
    assert b.loc["0195153448", "genres"] == "Social Science"  # Goodreads has nothing: Google Books
    cov = json.loads((dest / "coverage.json").read_text())["fields"]
    assert cov["genres"]["by_source"] == {"goodreads": 1, "google_books": 2}
    assert cov["synopsis"]["by_source"] == {"goodreads": 2, "google_books": 2}


def test_bx_dump_unavailable_degrades_to_google_books(http_server, env):
    serve_books(http_server)
    http_server.routes.pop("/bx/BX-CSV-Dump.zip")
    dest = env / "bx"
    fetch(http_server, "bx", dest)
    b = read_tsv(dest / "books.tsv").set_index("isbn")
    assert b.loc["0195153448", "title"] == "Classical Mythology"
    assert b.loc["0195153448", "author"] == "Mark P. O. Morford, Robert J. Lenardon" and b.loc["0195153448", "year"] == "2003"
    assert b.loc["0002005018", "title"] == ""
    notes = json.loads((dest / "coverage.json").read_text())["notes"]
    assert any("BX-Books.csv unavailable" in n for n in notes)


# Conversion details ----------------------------------------------------------------------------------
def write_raw(folder: Path, ratings: bytes = BX_RATINGS, mapping: bytes = BOOK_MAP, kg: bytes = KG_REHASHED) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "BX-Book-Ratings.csv").write_bytes(ratings)
    (folder / "item_index2entity_id_rehashed.txt").write_bytes(mapping)
    (folder / "kg_rehashed.txt").write_bytes(kg)
    return folder


def test_convert_threshold_5_hand_derived(tmp_path):
    # rating >= 5 positive: (276727, 0195153448, 7), (276725, 0060973129, 5), (276728, 0374157065, 10).
    # Users by first positive: 276727→0, 276725→1, 276728→2. Rated-negative items are excluded:
    # u0 rated item 1 (0) → negative from {2, 3}; u1 rated item 1 (0 and 3) → from {0, 3}; u2 from {0, 1, 2}.
    raw = write_raw(tmp_path / "raw")
    counts = convert_bookcrossing(raw, tmp_path / "out", threshold=5, seed=0)
    r = pd.read_csv(tmp_path / "out" / "ratings_final.txt", sep="\t", header=None).to_numpy()
    assert r[r[:, 2] == 1].tolist() == [[0, 0, 1], [1, 2, 1], [2, 3, 1]]
    neg = r[r[:, 2] == 0]
    assert neg[:, 0].tolist() == [0, 1, 2]
    assert neg[0, 1] in (2, 3) and neg[1, 1] in (0, 3) and neg[2, 1] in (0, 1, 2)
    assert counts["users"] == 3 and counts["uc_rows"] == 6


def test_convert_is_cached_by_inputs_and_params(tmp_path):
    raw = write_raw(tmp_path / "raw")
    out = tmp_path / "out"
    convert_bookcrossing(raw, out, seed=1)
    m1 = (out / "ratings_final.txt").stat().st_mtime_ns
    convert_bookcrossing(raw, out, seed=1)
    assert (out / "ratings_final.txt").stat().st_mtime_ns == m1  # skipped
    convert_bookcrossing(raw, out, threshold=5, seed=1)
    assert len((out / "ratings_final.txt").read_text().splitlines()) == 6  # parameters changed: redone


def test_user_needing_too_many_negatives_is_an_error(tmp_path):
    ratings = b'"User-ID";"ISBN";"Book-Rating"\n"1";"0195153448";"1"\n"1";"0002005018";"1"\n"1";"0060973129";"1"\n'
    with pytest.raises(DatasetError, match="needs 3 negatives but only 1"):
        convert_bookcrossing(write_raw(tmp_path / "raw", ratings=ratings), tmp_path / "out")


def test_bx_ratings_fast_and_exact_readers_agree(tmp_path):
    from kgcl_lib.data.acquire.bookcrossing import _read_bx_ratings_exact, _read_bx_ratings_fast

    p = tmp_path / "r.csv"
    p.write_bytes(BX_RATINGS.replace(b"\n", b"\r\n"))
    fast, exact = _read_bx_ratings_fast(p), _read_bx_ratings_exact(p)
    pd.testing.assert_frame_equal(fast, exact)
    assert fast.values.tolist()[:2] == [[276725, "0002005018", 0.0], [276726, "9999999999", 5.0]]
    # An extra field: RippleNet keeps the first three; the fast reader hands over to the exact one.
    p.write_bytes(BX_RATINGS + b'"276729";"0195153448";"4";"extra"\n')
    r = read_bx_ratings(p)
    assert len(r) == 8 and r.iloc[-1].tolist() == [276729, "0195153448", 4.0]


def test_bad_rating_line_names_file_and_line(tmp_path):
    ratings = b'"User-ID";"ISBN";"Book-Rating"\n"1";"0195153448";"1"\n"x7";"0002005018";"1"\n'
    p = tmp_path / "r.csv"
    p.write_bytes(ratings)
    with pytest.raises(DatasetError, match=r"r\.csv:3: user id 'x7'"):
        read_bx_ratings(p)


def test_duplicate_mapping_entity_is_an_error(tmp_path):
    raw = write_raw(tmp_path / "raw", mapping=b"0195153448\t7\n0002005018\t7\n")
    with pytest.raises(DatasetError, match=r"item_index2entity_id_rehashed.txt:2: duplicate entity id '7'"):
        convert_bookcrossing(raw, tmp_path / "out")


def naive_reference(lines: list[tuple[int, str, float]], isbns: list[str], threshold: float):
    """Straightforward dict/loop version of the protocol (the test oracle)."""
    idx = {s: i for i, s in enumerate(isbns)}
    pos, neg = {}, {}
    for u, s, r in lines:
        if s not in idx:
            continue
        (pos if r >= threshold else neg).setdefault(u, set()).add(idx[s])
    users = {u: k for k, u in enumerate(pos)}
    return users, {users[u]: v for u, v in pos.items()}, {users[u]: v for u, v in neg.items() if u in users}


def test_convert_matches_naive_reference_on_random_data(tmp_path):
    rng = np.random.default_rng(7)
    isbns = [f"{i:010d}" for i in range(40)]
    lines = [(int(rng.integers(1000, 1060)), isbns[rng.integers(0, 40)] if rng.random() < 0.9 else "X" * 10, float(rng.integers(0, 11)))
             for _ in range(600)]
    text = '"User-ID";"ISBN";"Book-Rating"\n' + "".join(f'"{u}";"{s}";"{int(r)}"\n' for u, s, r in lines)
    mapping = "".join(f"{s}\te{i}\n" for i, s in enumerate(isbns))
    heads = rng.choice([f"e{i}" for i in range(40)] + [f"x{i}" for i in range(30)], size=200)
    tails = rng.choice([f"x{i}" for i in range(30)] + [f"e{i}" for i in range(5)], size=200)
    rels = rng.choice(["r1", "r2", "r3", "r4"], size=200)
    kg_text = "".join(f"{h}\t{r}\t{t}\n" for h, r, t in zip(heads, rels, tails))
    raw = write_raw(tmp_path / "raw", text.encode(), mapping.encode(), kg_text.encode())
    convert_bookcrossing(raw, tmp_path / "out", threshold=6, seed=5)

    users, pos, neg = naive_reference(lines, isbns, 6)
    r = pd.read_csv(tmp_path / "out" / "ratings_final.txt", sep="\t", header=None).to_numpy()
    got_pos = {}
    for u, i, _ in r[r[:, 2] == 1]:
        got_pos.setdefault(int(u), set()).add(int(i))
    assert got_pos == pos
    for u in pos:
        negs = r[(r[:, 0] == u) & (r[:, 2] == 0), 1].tolist()
        assert len(negs) == len(set(negs)) == len(pos[u])
        assert not set(negs) & (pos[u] | neg.get(u, set()))

    # KG oracle: the reference's dict-growing loop.
    ent = {f"e{i}": i for i in range(40)}
    rel = {}
    want = []
    for h, rr, t in zip(heads, rels, tails):
        for x in (h, t):
            ent.setdefault(x, len(ent))
        rel.setdefault(rr, len(rel))
        want.append([ent[h], rel[rr], ent[t]])
    kg = pd.read_csv(tmp_path / "out" / "kg_final.txt", sep="\t", header=None).to_numpy()
    assert kg.tolist() == want


def test_sample_negatives_dense_and_sparse_users():
    rng = np.random.default_rng(0)
    n_items = 10
    # user 0: 4 positives, 2 rated-negative → 4 allowed items left, needs 4 → dense path (exactly those)
    # user 1: 1 positive → sparse path
    pos = np.array([[0, 0], [0, 1], [0, 2], [0, 3], [1, 5]])
    ex = np.concatenate([pos, [[0, 4], [0, 5]]])
    out = sample_negatives(pos, ex, 2, n_items, rng)
    assert out[:, 0].tolist() == [0, 0, 0, 0, 1]
    assert sorted(out[:4, 1]) == [6, 7, 8, 9] and out[4, 1] != 5


def test_convert_kg_unit():
    triples, n_ent, n_rel = convert_kg(np.array(["a", "b"], dtype=object), pd.DataFrame([["z", "p", "a"], ["b", "q", "z"], ["y", "p", "y"]]))
    assert triples.tolist() == [[2, 0, 0], [1, 1, 2], [3, 0, 3]] and n_ent == 4 and n_rel == 2


# CLI and sources ------------------------------------------------------------------------------------
def test_cli_fetch_and_errors(http_server, env, capsys, monkeypatch):
    serve_books(http_server)
    args = [f"--source={k}={v}" for k, v in overrides(http_server).items()]
    dest = env / "cli"
    assert fetch_cli(["fetch", "--dataset", "book", "--dest", str(dest), "--quiet", "--no-google-books", "--workers", "1", *args]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == str(dest)
    assert "title: 4 of 4; 0 missing (bx 4)" in out.err and "genres: 0 of 4; 4 missing" in out.err
    assert (dest / "ratings_final.txt").exists() and (dest / "books.tsv").exists()

    assert fetch_cli(["--dataset", "nope"]) == 2
    assert fetch_cli([]) == 2
    assert fetch_cli(["--dataset", "bx", "--source", "TMDB"]) == 2
    monkeypatch.setenv("KGCL_SOURCE_RIPPLENET_BOOK", http_server.url("/nothing-here/"))
    assert fetch_cli(["--dataset", "bx", "--dest", str(env / "cli2"), "--quiet", "--no-text"]) == 1
    assert "could not download BX-Book-Ratings.csv" in capsys.readouterr().err


def test_source_overrides(monkeypatch):
    assert srcs.resolve("TMDB").base == "https://api.themoviedb.org/3/"
    monkeypatch.setenv("KGCL_SOURCE_TMDB", "http://127.0.0.1:9/t")
    s = srcs.resolve("tmdb")
    assert s.base == "http://127.0.0.1:9/t/" and s.overridden
    assert srcs.resolve("TMDB", {"TMDB": "http://127.0.0.1:8/x/"}).base == "http://127.0.0.1:8/x/"  # parameter beats env
    bx = srcs.resolve("BX_DUMP", {"BX_DUMP": "http://127.0.0.1:8/bx/"})
    assert bx.mirrors == () and bx.urls("BX-CSV-Dump.zip") == ["http://127.0.0.1:8/bx/BX-CSV-Dump.zip"]
    assert len(srcs.resolve("BX_DUMP").urls("BX-CSV-Dump.zip")) == 2  # built-in mirror kept without override
    assert srcs.parse_overrides(["tmdb=http://h/"]) == {"TMDB": "http://h/"}
    with pytest.raises(ValueError, match="NAME=URL"):
        srcs.parse_overrides(["TMDB"])
    with pytest.raises(KeyError, match="unknown source"):
        srcs.resolve("NOPE")


def test_every_url_in_one_registry():
    # No http(s) URL literal outside sources.py in the acquisition code.
    import re

    here = Path(srcs.__file__).parent
    for f in [*sorted((here / "acquire").glob("*.py")), *sorted((here / "download").glob("*.py"))]:
        text = f.read_text()
        urls = [u for u in re.findall(r"https?://[^\s\"')]+", text) if "themoviedb.org/settings" not in u]
        assert urls == [], (f, urls)


# Real processed data -----------------------------------------------------------------------------------
def shared_bookcrossing() -> Path | None:
    root = os.environ.get("KGCL_DATA_DIR")
    p = Path(root) / "book-crossing" if root else None
    if p is None or not (p / "ratings_final.txt").exists():
        print("skip reason: KGCL_DATA_DIR unset or has no book-crossing/")
        return None
    return p


def test_shared_processed_bookcrossing_matches_table1_and_protocol():
    p = shared_bookcrossing()
    if p is None:
        pytest.skip("KGCL_DATA_DIR unset or has no book-crossing/ (export KGCL_DATA_DIR=../shared/data)")
    assert kgcn_counts(p) == PAPER_TABLE1["book-crossing"]
    r = pd.read_csv(p / "ratings_final.txt", sep="\t", header=None).to_numpy()
    n_pos = np.bincount(r[r[:, 2] == 1, 0])
    n_neg = np.bincount(r[r[:, 2] == 0, 0], minlength=len(n_pos))
    assert (n_pos == n_neg).all()  # one negative per positive, per user
    keys = r[:, 0] * 100_000 + r[:, 1]
    assert len(np.unique(keys)) == len(keys)  # negatives never repeat a positive or each other
    # users numbered by first appearance: the first row of user u comes after user u-1's rows
    first = pd.Series(r[:, 0]).drop_duplicates().to_numpy()
    assert (first == np.arange(len(first))).all()
