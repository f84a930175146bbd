//! S4, cache: a cold `SELECT *`, then warm ones on the same server with
//! `--cache-ttl 600`.

use crate::*;

pub(super) const ABOUT: &str = "**S4, cache.** The server runs with `--cache-ttl 600`: one cold `SELECT *`, then \
     `--runs` warm ones on the same server. The emulator's jobs never change, so a \
     warm scan should list again but call Describe and ListTags for no job (target: \
     0 in every warm run).";

impl Bench {
    pub(super) async fn s4(&mut self) -> Res<()> {
        let setup = Setup {
            cache_ttl: 600,
            ..self.setup(10_000, 25)
        };
        let emulator = self.emulator(&setup).await?;
        let (mut server, url) = self.server(&setup, &emulator).await?;
        let note = (!self.flags.cache_ttl)
            .then(|| "this server has no --cache-ttl: nothing is cached".to_string());
        if let Some(note) = &note {
            println!("  S4: {note}");
        }
        let cold = self
            .repeat(
                "S4 cold",
                &setup,
                &emulator,
                &mut server,
                &url,
                SELECT_ALL,
                Some(setup.jobs),
                1,
            )
            .await?;
        let cold = Row {
            label: "S4 cold".into(),
            setup: setup.describe(),
            samples: cold,
            rss_mib: server.peak_rss_mib(),
            bound: Some(setup.bound()),
            extra: note.iter().cloned().collect(),
            ..Row::default()
        };
        self.rows.push(cold);
        let warm = self
            .repeat(
                "S4 warm",
                &setup,
                &emulator,
                &mut server,
                &url,
                SELECT_ALL,
                Some(setup.jobs),
                self.options.runs,
            )
            .await?;
        let mut warm = Row {
            label: "S4 warm".into(),
            setup: setup.describe(),
            samples: warm,
            rss_mib: server.peak_rss_mib(),
            bound: Some(setup.bound()),
            extra: note.into_iter().collect(),
            ..Row::default()
        };
        let worst = |f: fn(&Calls) -> u64| {
            warm.samples
                .iter()
                .filter_map(|s| s.calls.as_ref().map(f))
                .max()
                .unwrap_or(0)
        };
        let (describe, tags) = (worst(|c| c.describe), worst(|c| c.tags));
        warm.targets.push(Target::new(
            "S4",
            "warm runs: 0 Describe and 0 ListTags (jobs unchanged)",
            format!("Describe {describe}, ListTags {tags} (most in one warm run)"),
            format!("warm Describe {describe}, ListTags {tags} = 0"),
            Some(describe == 0 && tags == 0),
        ));
        self.rows.push(warm);
        Ok(())
    }
}
