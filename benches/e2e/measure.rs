//! Measuring a query: calls counted by the emulator, samples, medians,
//! and the Flight and Flight SQL reads the scenarios time.

use super::*;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;

/// SageMaker calls of one run, from the emulator's stats.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Calls {
    pub(super) list: u64,
    pub(super) describe: u64,
    pub(super) tags: u64,
    /// Describe calls answered normally (neither throttled nor 5xx).
    pub(super) describe_ok: u64,
    /// Throttled calls, all operations.
    pub(super) throttled: u64,
    /// Calls, all operations.
    pub(super) total: u64,
}

impl Calls {
    pub(super) fn from_stats(stats: &Value) -> Calls {
        let field = |op: &str, name: &str| stats["operations"][op][name].as_u64().unwrap_or(0);
        let ops = stats["operations"].as_object();
        let sum = |name: &str| {
            ops.map_or(0, |ops| {
                ops.values()
                    .map(|o| o[name].as_u64().unwrap_or(0))
                    .sum::<u64>()
            })
        };
        let describe = "DescribeCompilationJob";
        Calls {
            list: field("ListCompilationJobs", "calls"),
            describe: field(describe, "calls"),
            tags: field("ListTags", "calls"),
            describe_ok: field(describe, "calls")
                .saturating_sub(field(describe, "throttled") + field(describe, "server_errors")),
            throttled: sum("throttled"),
            total: sum("calls"),
        }
    }

    /// Field-wise median.
    pub(super) fn median(all: &[Calls]) -> Calls {
        let of = |f: fn(&Calls) -> u64| {
            let mut v: Vec<u64> = all.iter().map(f).collect();
            v.sort_unstable();
            v[v.len() / 2]
        };
        Calls {
            list: of(|c| c.list),
            describe: of(|c| c.describe),
            tags: of(|c| c.tags),
            describe_ok: of(|c| c.describe_ok),
            throttled: of(|c| c.throttled),
            total: of(|c| c.total),
        }
    }
}

/// One run of one query.
#[derive(Clone, Debug)]
pub(super) struct Sample {
    pub(super) wall: f64,
    pub(super) first: Option<f64>,
    pub(super) rows: usize,
    pub(super) calls: Option<Calls>,
}

/// Counts rows and times batches; optionally writes them to an IPC file.
pub(super) struct Tally<'a> {
    pub(super) started: Instant,
    pub(super) first: Option<f64>,
    pub(super) rows: usize,
    pub(super) sink: Option<&'a mut IpcSink>,
}

impl<'a> Tally<'a> {
    /// Starts the clock; batches go to `sink` too, if given.
    pub(super) fn start(sink: Option<&'a mut IpcSink>) -> Self {
        Tally {
            started: Instant::now(),
            first: None,
            rows: 0,
            sink,
        }
    }

    /// Takes in every batch of one DoGet stream.
    pub(super) async fn read(
        &mut self,
        stream: Result<FlightRecordBatchStream, FlightError>,
    ) -> Res<()> {
        let mut stream = stream.map_err(|e| format!("do_get: {e}"))?;
        while let Some(batch) = stream.next().await {
            self.batch(&batch.map_err(|e| format!("stream: {e}"))?)?;
        }
        Ok(())
    }

    pub(super) fn batch(&mut self, batch: &RecordBatch) -> Res<()> {
        self.first
            .get_or_insert_with(|| self.started.elapsed().as_secs_f64());
        self.rows += batch.num_rows();
        if let Some(sink) = self.sink.as_deref_mut() {
            sink.write(batch)?;
        }
        Ok(())
    }

    pub(super) fn finish(self) -> Sample {
        Sample {
            wall: self.started.elapsed().as_secs_f64(),
            first: self.first,
            rows: self.rows,
            calls: None,
        }
    }
}

/// The rows of a scan, written as an Arrow IPC file as they arrive.
pub(super) struct IpcSink {
    pub(super) path: PathBuf,
    pub(super) writer: Option<FileWriter<BufWriter<std::fs::File>>>,
}

impl IpcSink {
    pub(super) fn write(&mut self, batch: &RecordBatch) -> Res<()> {
        let error = |e: &dyn std::fmt::Display| format!("{}: {e}", self.path.display());
        if self.writer.is_none() {
            let file = std::fs::File::create(&self.path).map_err(|e| error(&e))?;
            let writer = FileWriter::try_new(BufWriter::new(file), &batch.schema())
                .map_err(|e| error(&e))?;
            self.writer = Some(writer);
        }
        if let Some(writer) = self.writer.as_mut() {
            writer.write(batch).map_err(|e| format!("IPC write: {e}"))?;
        }
        Ok(())
    }

    pub(super) fn finish(&mut self) -> Res<()> {
        match self.writer.as_mut() {
            Some(writer) => writer.finish().map_err(|e| format!("IPC finish: {e}")),
            None => Err("the scan gave no batch to write".into()),
        }
    }
}

pub(super) async fn flight_service(url: &str) -> Res<FlightServiceClient<Channel>> {
    let endpoint = Channel::from_shared(url.to_owned())
        .map_err(|e| format!("{url}: {e}"))?
        .connect_timeout(HTTP_TIMEOUT);
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("connect {url}: {e}"))?;
    Ok(FlightServiceClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE))
}

/// A Flight SQL query: `execute()`, then DoGet of every endpoint.
pub(super) async fn sql_query(url: &str, sql: &str) -> Res<Sample> {
    let mut client = FlightSqlServiceClient::new_from_inner(flight_service(url).await?);
    let mut tally = Tally::start(None);
    let info = client
        .execute(sql.to_owned(), None)
        .await
        .map_err(|e| format!("execute: {e}"))?;
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.ok_or("an endpoint without a ticket")?;
        tally.read(client.do_get(ticket).await).await?;
    }
    Ok(tally.finish())
}

/// The batches of a Flight SQL query (every endpoint's).
pub(super) async fn sql_batches(url: &str, sql: &str) -> Res<Vec<RecordBatch>> {
    let mut client = FlightSqlServiceClient::new_from_inner(flight_service(url).await?);
    let info = client
        .execute(sql.to_owned(), None)
        .await
        .map_err(|e| format!("execute: {e}"))?;
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.ok_or("an endpoint without a ticket")?;
        let mut stream = client
            .do_get(ticket)
            .await
            .map_err(|e| format!("do_get: {e}"))?;
        while let Some(batch) = stream.next().await {
            batches.push(batch.map_err(|e| format!("stream: {e}"))?);
        }
    }
    Ok(batches)
}

/// A plain Flight read: GetFlightInfo of the table's path descriptor, then
/// DoGet of every endpoint's ticket.
pub(super) async fn flight_scan(url: &str, sink: Option<&mut IpcSink>) -> Res<Sample> {
    let mut client = FlightClient::new_from_inner(flight_service(url).await?);
    let mut tally = Tally::start(sink);
    let info: FlightInfo = client
        .get_flight_info(FlightDescriptor::new_path(vec![TABLE.into()]))
        .await
        .map_err(|e| format!("get_flight_info: {e}"))?;
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.ok_or("an endpoint without a ticket")?;
        tally.read(client.do_get(ticket).await).await?;
    }
    Ok(tally.finish())
}

/// What one run reads.
pub(super) enum Read<'a> {
    Sql(&'a str),
    Flight(Option<&'a mut IpcSink>),
}

pub(super) fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
