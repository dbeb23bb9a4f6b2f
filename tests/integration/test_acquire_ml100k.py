"""ML-100K synopses (`fetch --dataset ml-100k`) against a loopback server.

The fixture is five real ML-100K items (ids, titles, years and Freebase ids as in the RecBole
files) and TMDB / Wikipedia answers shaped like the real APIs' (TMDB ids are the real ones).
Every expected value is read off the fixture by hand.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.httpfixtures import FakeClock, Reply, http_server  # noqa: F401  (fixture import)
from kgcl_lib.data import embedded
from kgcl_lib.data.acquire import ApiKeyError, fetch_cli, fetch_dataset, tmdb_pick
from kgcl_lib.data.download import HttpClient, RetryPolicy
from kgcl_lib.data import sources as srcs

import numpy as np

TMDB_KEY = "0123456789abcdef0123456789abcdef"

ITEM = (
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    "1\tToy Story\t1995\tAnimation Children's Comedy\n"
    "7\tTwelve Monkeys\t1995\tDrama Sci-Fi\n"
    "12\tUsual Suspects, The\t1995\tCrime Thriller\n"
    "274\tSabrina\t1995\tComedy Romance\n"
    "486\tSabrina\t1954\tComedy Romance\n"
    "999\tNot Linked\t1997\tDrama\n"  # no .link entry: not in the dataset, never asked for
)
LINK = "item_id:token\tentity_id:token\n1\tm.0dyb1\n7\tm.04wdfw\n12\tm.02_lmb\n274\tm.0g5qs2k\n486\tm.03k_7g\n"
KG = "head_id:token\trelation_id:token\ttail_id:token\nm.0dyb1\tfilm.film.genre\tm.0hcr\nm.04wdfw\tfilm.film.genre\tm.06n90\n"
INTER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n196\t1\t5\t881250949\n196\t7\t4\t881250950\n"


def write_ml100k(dest: Path) -> Path:
    """The RecBole files, as `fetch_ml100k` leaves them (so no wheel is needed)."""
    dest.mkdir(parents=True, exist_ok=True)
    for ext, text in (("item", ITEM), ("link", LINK), ("kg", KG), ("inter", INTER), ("user", "user_id:token\n196\n")):
        (dest / f"ml-100k.{ext}").write_text(text)
    return dest


def search_result(tid, title, date, overview, popularity=10.0):
    return {"id": tid, "title": title, "original_title": title, "release_date": date, "overview": overview, "popularity": popularity}


SEARCH = {
    "Toy Story": [search_result(862, "Toy Story", "1995-11-22", "Led by Woody, Andy's toys live happily in his room.", 90.0),
                  search_result(863, "Toy Story 2", "1999-10-30", "Andy heads off to Cowboy Camp.", 80.0)],
    "Twelve Monkeys": [search_result(63, "Twelve Monkeys", "1995-12-29", "In the year 2035, convict James Cole volunteers.")],
    # two films share the title: the year decides (the 1954 one is more popular, so popularity alone would be wrong)
    "Sabrina": [search_result(6620, "Sabrina", "1954-09-28", "Linus and David Larrabee are the two sons.", 30.0),
                search_result(11860, "Sabrina", "1995-12-15", "An ugly duckling having undergone a remarkable change.", 12.0)],
}


def serve(server, *, wiki: bool = True) -> dict:
    """TMDB search (429 + Retry-After once for Twelve Monkeys; 404 for The Usual Suspects) and Wikipedia."""
    throttled = {"Twelve Monkeys": 1}
    lock = threading.Lock()

    def search(req):
        q = dict(p.split("=", 1) for p in req.query.split("&") if "=" in p)
        title = q.get("query", "")
        with lock:
            if throttled.get(title, 0) > 0:
                throttled[title] -= 1
                return Reply(429, b'{"status_code": 25, "status_message": "Your request count is over the allowed limit."}',
                             {"Retry-After": "3", "Content-Type": "application/json"})
        if title == "The Usual Suspects":
            return Reply(404, b'{"success": false, "status_code": 34, "status_message": "The resource you requested could not be found."}',
                         {"Content-Type": "application/json"})
        body = {"page": 1, "results": SEARCH.get(title, []), "total_results": len(SEARCH.get(title, []))}
        return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    server.handler("/tmdb/3/search/movie", search)
    if wiki:
        w = "/wiki/"
        server.json(w + "Toy_Story_(1995_film)", {"type": "standard", "description": "1995 animated film",
                    "extract": "Toy Story is a 1995 American animated comedy film."})
        server.json(w + "Twelve_Monkeys_(1995_film)", {"type": "standard", "description": "1995 film by Terry Gilliam",
                    "extract": "12 Monkeys is a 1995 American science fiction film."})
        # (1995 film) is a 404; "(film)" is the right article and names the year
        server.json(w + "The_Usual_Suspects_(film)", {"type": "standard", "description": "1995 film by Bryan Singer",
                    "extract": "The Usual Suspects is a 1995 crime thriller film."})
        server.json(w + "Sabrina_(1995_film)", {"type": "standard", "description": "1995 film by Sydney Pollack",
                    "extract": "Sabrina is a 1995 American romantic comedy-drama film."})
        server.json(w + "Sabrina_(1954_film)", {"type": "standard", "description": "1954 film by Billy Wilder",
                    "extract": "Sabrina is a 1954 American romantic comedy-drama film."})
    return throttled


def client(server, clock) -> HttpClient:
    return HttpClient(retry=RetryPolicy(max_retries=2, backoff_base_s=0.1, timeout_s=10),
                      limits=srcs.rate_limits({"TMDB": server.url("/tmdb/3/"), "WIKIPEDIA": server.url("/wiki/")}),
                      sleep=clock.sleep, clock=clock.monotonic, now=clock.now, rng=np.random.default_rng(0))


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("KGCL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TMDB_API_KEY", raising=False)
    monkeypatch.setattr(embedded, "download_recbole_wheel", lambda *a, **k: pytest.fail("must not download the wheel"))
    return tmp_path


def fetch(server, dest, clock=None, **kw):
    return fetch_dataset("ml-100k", dest, sources={"TMDB": server.url("/tmdb/3/"), "WIKIPEDIA": server.url("/wiki/")},
                         client=client(server, clock or FakeClock()), workers=kw.pop("workers", 2), progress=False,
                         verbose=kw.pop("verbose", False), manifest=dest.parent / "manifest.json", **kw)


def read_tsv(path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3)


def test_tmdb_by_title_and_year(http_server, env, monkeypatch):
    monkeypatch.setenv("TMDB_API_KEY", TMDB_KEY)
    serve(http_server)
    dest = write_ml100k(env / "ml-100k")
    clock = FakeClock()
    fetch(http_server, dest, clock, movie_text="tmdb", workers=1)  # one worker: the second "Sabrina" is a cache hit
    syn = read_tsv(dest / "synopses.tsv").set_index("item_id")["synopsis"]
    # 1: exact title+year (Toy Story 2 ignored); 7: after a 429; 274/486: the two Sabrinas told apart by year
    assert syn.to_dict() == {
        "1": "Led by Woody, Andy's toys live happily in his room.",
        "7": "In the year 2035, convict James Cole volunteers.",
        "274": "An ugly duckling having undergone a remarkable change.",
        "486": "Linus and David Larrabee are the two sons.",
    }
    trace = read_tsv(dest / "synopses_source.tsv").set_index("item_id")
    assert trace.loc["274", "tmdb_id"] == "11860" and trace.loc["486", "tmdb_id"] == "6620"
    assert set(trace["source"]) == {"tmdb"}
    assert 3.0 in clock.sleeps  # Retry-After honoured
    miss = read_tsv(dest / "missing.tsv").set_index("item_id")
    assert list(miss.index) == ["12"] and "404" in miss.loc["12", "reason"]  # searched as "The Usual Suspects"
    cov = json.loads((dest / "coverage.json").read_text())
    assert cov["fields"]["synopsis"] == {"have": 4, "of": 5, "missing": 1, "by_source": {"tmdb": 4, "wikipedia": 0}}
    # the ambiguous title says which film was taken and which not
    amb = sorted(cov["ambiguous"])
    assert len(amb) == 2
    assert "picked id 11860 (1995)" in amb[1] and "not 6620 (1954)" in amb[1]
    assert "picked id 6620 (1954)" in amb[0] and "not 11860 (1995)" in amb[0]
    assert "titles matched several films" in cov["summary"]
    assert http_server.count("/wiki/") == 0
    searches = http_server.requests("/tmdb/")
    assert all(f"api_key={TMDB_KEY}" in r.query for r in searches)
    assert "query=Sabrina" in " ".join(r.query for r in searches)
    n = http_server.count()
    assert n == 5  # Toy Story, Twelve Monkeys twice (429 then 200), The Usual Suspects, Sabrina (one search serves both)

    before = {p.name: p.read_bytes() for p in dest.iterdir() if p.is_file() and p.name != "coverage.json"}
    fetch(http_server, dest, movie_text="tmdb")
    assert http_server.count() == n  # a rerun makes zero requests
    assert {p.name: p.read_bytes() for p in dest.iterdir() if p.is_file() and p.name != "coverage.json"} == before


def test_keyless_wikipedia_path(http_server, env, capsys):
    serve(http_server)
    dest = write_ml100k(env / "ml-100k")
    fetch(http_server, dest, movie_text="auto", verbose=True, workers=1)
    err = capsys.readouterr().err
    assert "TMDB_API_KEY is not set" in err and "Wikipedia" in err  # said clearly, once
    assert err.count("TMDB_API_KEY is not set") == 1
    syn = read_tsv(dest / "synopses.tsv").set_index("item_id")["synopsis"]
    assert syn["12"] == "The Usual Suspects is a 1995 crime thriller film."  # "(1995 film)" 404 -> "(film)" with the year
    assert syn["274"].startswith("Sabrina is a 1995") and syn["486"].startswith("Sabrina is a 1954")
    assert len(syn) == 5
    assert http_server.count("/tmdb/") == 0
    cov = json.loads((dest / "coverage.json").read_text())
    assert cov["fields"]["synopsis"]["by_source"] == {"tmdb": 0, "wikipedia": 5}
    assert any("Wikipedia (keyless fallback)" in n for n in cov["notes"])
    n = http_server.count()
    fetch(http_server, dest, movie_text="auto")
    assert http_server.count() == n


def test_tmdb_plus_wikipedia_fills_the_404(http_server, env, monkeypatch):
    monkeypatch.setenv("TMDB_API_KEY", TMDB_KEY)
    serve(http_server)
    dest = write_ml100k(env / "ml-100k")
    fetch(http_server, dest, movie_text="tmdb+wikipedia")
    trace = read_tsv(dest / "synopses_source.tsv").set_index("item_id")["source"]
    assert trace.to_dict() == {"1": "tmdb", "7": "tmdb", "12": "wikipedia", "274": "tmdb", "486": "tmdb"}


def test_missing_key_in_strict_mode_fails_before_any_request(http_server, env):
    serve(http_server)
    dest = write_ml100k(env / "ml-100k")
    with pytest.raises(ApiKeyError, match="TMDB_API_KEY is not set"):
        fetch(http_server, dest, movie_text="tmdb")
    assert http_server.count() == 0 and not (dest / "synopses.tsv").exists()


def test_cli_and_load_dataset_use_the_synopses(http_server, env, monkeypatch, capsys):
    from kgcl_lib.data import load_dataset

    monkeypatch.delenv("KGCL_DATA_DIR", raising=False)
    monkeypatch.setenv("TMDB_API_KEY", TMDB_KEY)
    monkeypatch.setenv("KGCL_SOURCE_TMDB", http_server.url("/tmdb/3/"))
    serve(http_server)["Twelve Monkeys"] = 0  # the real client would wait out Retry-After: no 429 here
    dest = write_ml100k(env / "cache" / "data" / "ml-100k")
    assert fetch_cli(["fetch", "--dataset", "ml-100k", "--movie-text", "tmdb", "--quiet", "--workers", "1"]) == 0
    assert capsys.readouterr().out.strip() == str(dest)
    ds = load_dataset("ml-100k", cache=False)
    syn = ds.items.set_index("raw_id")["synopsis"]
    assert syn["274"].startswith("An ugly duckling") and pd.isna(syn["12"])
    assert ds.provenance["text_source"] == "tmdb"


def test_tmdb_pick_rules():
    films = SEARCH["Sabrina"]
    assert tmdb_pick(films, "Sabrina", 1995)[0]["id"] == 11860
    assert tmdb_pick(films, "Sabrina", 1996)[0]["id"] == 11860  # release dates differ by country: ±1 year
    hit, note = tmdb_pick(films, "Sabrina", 1970)
    assert hit is None and "none from 1970" in note
    assert tmdb_pick(films, "Sabrina", None)[0] is None  # two films and no year: no guess
    assert tmdb_pick(SEARCH["Toy Story"], "Toy Story", 1995) == (SEARCH["Toy Story"][0], None)  # one film of that title: no note
    assert tmdb_pick([], "Nothing", 1990) == (None, None)


def test_offline_without_synopses_says_so_once(env, monkeypatch, capsys):
    from kgcl_lib.data import load_dataset, registry

    monkeypatch.delenv("KGCL_DATA_DIR", raising=False)
    monkeypatch.setattr(registry, "_SAID", set())
    write_ml100k(env / "cache" / "data" / "ml-100k")  # the embedded files, no synopses.tsv
    with pytest.warns(UserWarning, match="no synopses found"):
        ds = load_dataset("ml-100k")
    assert ds.provenance["text_source"] == "none" and ds.items["synopsis"].isna().all()
    load_dataset("ml-100k")
    load_dataset("ml-100k", cache=False)
    err = capsys.readouterr().err
    assert err.count("no synopses found") == 1 and "fetch --dataset ml-100k" in err


def test_fetch_reads_titles_from_a_read_only_data_dir(http_server, env, monkeypatch):
    """ML-100K in $KGCL_DATA_DIR without synopses: the fetch writes them to the cache, where
    load_dataset picks them up next to the shared files."""
    from kgcl_lib.data import load_dataset

    shared = write_ml100k(env / "shared" / "ml-100k")
    monkeypatch.setenv("KGCL_DATA_DIR", str(shared.parent))
    serve(http_server)
    dest = env / "cache" / "data" / "ml-100k"
    fetch(http_server, dest, movie_text="wikipedia", workers=1)
    assert sorted(p.name for p in dest.iterdir() if p.is_file()) == ["coverage.json", "missing.tsv", "synopses.tsv", "synopses_source.tsv"]
    ds = load_dataset("ml-100k", cache=False)
    assert ds.provenance["source"] == str(shared) and ds.provenance["text_source"] == "wikipedia"
    assert ds.items.set_index("raw_id")["synopsis"]["486"].startswith("Sabrina is a 1954")


def test_book_metadata_feeds_the_book_templates(http_server, env):
    """Fetched books.tsv (BX-Books + Google Books) -> titles, genres, synopses -> the paper's book
    templates and the text embeddings' input, labelled by source."""
    from tests.integration.test_acquire import fake_client, overrides, serve_books

    from kgcl_lib import experiments as X
    from kgcl_lib.data import load_dataset
    from kgcl_lib.pairs.templates import verbalize

    serve_books(http_server)
    dest = env / "bx" / "book-crossing"
    fetch_dataset("book-crossing", dest, sources=overrides(http_server), client=fake_client(http_server), workers=1,
                  progress=False, verbose=False, manifest=env / "manifest.json")
    ds = load_dataset("book-crossing", dest, cache=False)
    items = ds.items.set_index("raw_id")
    assert items.loc["0195153448", "title"] == "Classical Mythology" and items.loc["0195153448", "year"] == 2002
    assert items.loc["0060973129", "genres"] == ("History",)
    assert items.loc["0060973129", "synopsis"] == "A tale of Normandy."
    sent = verbalize(ds, "title_genre", "book")
    i = int(np.flatnonzero(ds.items["raw_id"] == "0195153448")[0])
    assert sent[i] == "A book title is Classical Mythology (2002). The genre(s) of the book is Social Science."
    assert sent[int(np.flatnonzero(ds.items["raw_id"] == "0002005018")[0])] is None  # no genres anywhere: no sentence
    # the text source is the books' own descriptions, named as such
    assert ds.provenance["text_source"] == "google_books"
    text = X.resolve_run_text(ds, "with")
    assert text.source == "google_books"
    assert text.description.startswith("Google Books descriptions for 2/4 items")


def test_unreachable_host_stops_after_three_failures(env):
    """Offline (connection refused): three failed titles, then the source is skipped, not retried per item."""
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    dest = write_ml100k(env / "ml-100k")
    clock = FakeClock()
    c = HttpClient(retry=RetryPolicy(max_retries=1, backoff_base_s=0.1, timeout_s=2), sleep=clock.sleep,
                   clock=clock.monotonic, now=clock.now, rng=np.random.default_rng(0))
    fetch_dataset("ml-100k", dest, sources={"WIKIPEDIA": dead, "TMDB": dead}, client=c, workers=1, progress=False,
                  verbose=False, manifest=env / "manifest.json", movie_text="wikipedia")
    assert c.stats["requests"] <= 3 * 2  # three titles, each tried twice; the other two skipped
    miss = read_tsv(dest / "missing.tsv").set_index("item_id")["reason"]
    assert len(miss) == 5 and miss["486"].startswith("Wikipedia skipped: Wikipedia unreachable")
    notes = json.loads((dest / "coverage.json").read_text())["notes"]
    assert any("unreachable" in n for n in notes)
