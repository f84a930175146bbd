"""The delay from a change in a living emulator to its row at a change-feed
client: a server with a store refreshing every REFRESH_S seconds, a pyarrow
client following aws.sagemaker_compilation_job_changes for DURATION_S
seconds; the delay of a row is its arrival less the job's LastModifiedTime
(its CreationTime if it has none). Rows of a tags-only change keep an older
LastModifiedTime and are left out. Prints median, p90, worst and best.

    SAGEMAKER_FLIGHT_BIN=target/release/sagemaker-flight \
        .venv/bin/python benches/feed_delay.py REFRESH_S DURATION_S
"""
import os, sys, time, statistics, shutil, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
from conftest import binary, emulator_env, start_and_read_address, stop
import pyarrow.flight as flight
refresh, duration = sys.argv[1], float(sys.argv[2])
store = tempfile.mkdtemp()
emulator, endpoint = start_and_read_address([binary(), "emulator", "--listen", "127.0.0.1:0", "--jobs", "200", "--activity", "60"], pattern=r"emulator listening on (\S+)")
server, url = start_and_read_address([binary(), "serve", "--listen", "127.0.0.1:0", "--endpoint-url", endpoint, "--store", store, "--refresh-interval", refresh], env=emulator_env())
c = flight.connect(url)
def q(sql):
    i = c.get_flight_info(flight.FlightDescriptor.for_command(sql)); return c.do_get(i.endpoints[0].ticket).read_all()
while q("SELECT count(*) FROM aws.sagemaker_compilation_job_freshness WHERE watermark IS NOT NULL").column(0)[0].as_py() != 1: time.sleep(0.2)
sql = "SELECT _key, change_type, creation_time, last_modified_time FROM aws.sagemaker_compilation_job_changes WHERE change_type <> 'deleted'"
info = c.get_flight_info(flight.FlightDescriptor.for_command(sql))
reader = c.do_get(info.endpoints[0].ticket, flight.FlightCallOptions(timeout=duration + 120))
delays = []; end = time.time() + duration; seen = set(); tag_only = 0
while time.time() < end:
    batch = reader.read_chunk().data; now = time.time()
    for row in batch.to_pylist():
        changed = row["last_modified_time"] or row["creation_time"]
        # A change of tags alone keeps LastModifiedTime: it says nothing of when it was made.
        if (row["_key"], changed) in seen:
            tag_only += 1
            continue
        seen.add((row["_key"], changed))
        delays.append(now - changed.timestamp())
reader.cancel(); stop(server); stop(emulator); shutil.rmtree(store)
delays.sort()
print(f"refresh {refresh} s: {tag_only} tag-only updates left out; {len(delays)} changes over {duration:.0f} s; delay median {statistics.median(delays):.2f} s, p90 {delays[int(len(delays)*0.9)]:.2f} s, worst {delays[-1]:.2f} s, best {delays[0]:.2f} s")
