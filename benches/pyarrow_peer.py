"""pyarrow's own Flight server serving a table it already holds.

The peer for the encode side of sagemaker-flight: the same rows, read once
from an Arrow IPC file, served by `pyarrow.flight.FlightServerBase` (the
Arrow C++ Flight server under a thin Python layer). A DoGet of any ticket
streams the whole table; ListFlights and GetFlightInfo describe the one
flight, at the PATH `["aws.sagemaker_compilation_job"]`, with a single
endpoint whose ticket is b"table" (no locations: use the same connection).

    python benches/pyarrow_peer.py --arrow-file rows.arrow
    # prints: listening on grpc://127.0.0.1:PORT

It binds grpc://127.0.0.1:0, prints the address on stdout (one line,
flushed) and serves until SIGTERM or SIGINT.
"""

import argparse
import signal
import sys

import pyarrow as pa
import pyarrow.flight as flight

TABLE_NAME = "aws.sagemaker_compilation_job"
TICKET = b"table"


def read_table(path):
    """The table in an Arrow IPC file (the file format; the stream format too)."""
    with pa.memory_map(path) as source:
        try:
            return pa.ipc.open_file(source).read_all()
        except pa.ArrowInvalid:
            source.seek(0)
            return pa.ipc.open_stream(source).read_all()


def is_table_path(path):
    names = [p.decode() if isinstance(p, bytes) else p for p in path]
    return names in ([TABLE_NAME], TABLE_NAME.split("."))


def describe(descriptor):
    if descriptor.descriptor_type == flight.DescriptorType.PATH:
        return "path " + "/".join(p.decode(errors="replace") for p in descriptor.path)
    return "a command descriptor"


class TableServer(flight.FlightServerBase):
    def __init__(self, table, location="grpc://127.0.0.1:0"):
        super().__init__(location)
        self._table = table
        self._descriptor = flight.FlightDescriptor.for_path(TABLE_NAME)

    def _info(self, descriptor):
        endpoint = flight.FlightEndpoint(TICKET, [])
        return flight.FlightInfo(
            self._table.schema,
            descriptor,
            [endpoint],
            self._table.num_rows,
            self._table.nbytes,
        )

    def list_flights(self, context, criteria):
        yield self._info(self._descriptor)

    def get_flight_info(self, context, descriptor):
        if descriptor.descriptor_type != flight.DescriptorType.PATH or not is_table_path(
            descriptor.path
        ):
            # A KeyError reaches the client as NOT_FOUND.
            raise KeyError(f"no flight at {describe(descriptor)}")
        return self._info(descriptor)

    def get_schema(self, context, descriptor):
        if descriptor.descriptor_type != flight.DescriptorType.PATH or not is_table_path(
            descriptor.path
        ):
            raise KeyError(f"no flight at {describe(descriptor)}")
        return flight.SchemaResult(self._table.schema)

    def do_get(self, context, ticket):
        # Any ticket: the whole table, batch by batch as it is held.
        return flight.RecordBatchStream(self._table)


class Stop(Exception):
    """Raised by the signal handlers to end serve()."""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arrow-file", required=True, help="Arrow IPC file to serve")
    args = parser.parse_args(argv)

    table = read_table(args.arrow_file)
    server = TableServer(table)

    def on_signal(signum, frame):
        raise Stop(signum)

    # serve() runs the Python signal handlers while it blocks; one that
    # raises makes it return.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    print(f"listening on grpc://127.0.0.1:{server.port}", flush=True)
    try:
        server.serve()
    except (Stop, KeyboardInterrupt):
        pass
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
