//! The scenarios of `benches/e2e.rs`: their list ([`Id`]) and what runs
//! each. Every scenario has a file of its own here with its setup, its run
//! and its targets, and the paragraph [`Id::about`] gives for it.

use super::*;

mod c_cost;
mod m_memory;
mod r1_restart;
mod r2_refresh;
mod r3_replica_read;
mod s1_full_scan;
mod s2_rate_limit;
mod s3_pushdown;
mod s4_cache;
mod s5_serving_speed;
mod s6_first_batch;
mod s7_first_rows;

/// A scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Id {
    S1,
    S2,
    S3,
    S4,
    S5,
    S6,
    S7,
    M,
    R1,
    R2,
    R3,
    C,
}

impl Id {
    pub(super) const ALL: [Id; 12] = [
        Id::S1,
        Id::S2,
        Id::S3,
        Id::S4,
        Id::S5,
        Id::S6,
        Id::S7,
        Id::M,
        Id::R1,
        Id::R2,
        Id::R3,
        Id::C,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Id::S1 => "S1",
            Id::S2 => "S2",
            Id::S3 => "S3",
            Id::S4 => "S4",
            Id::S5 => "S5",
            Id::S6 => "S6",
            Id::S7 => "S7",
            Id::M => "M",
            Id::R1 => "R1",
            Id::R2 => "R2",
            Id::R3 => "R3",
            Id::C => "C",
        }
    }

    pub(super) fn parse(text: &str) -> Option<Id> {
        Id::ALL
            .into_iter()
            .find(|id| id.name().eq_ignore_ascii_case(text.trim()))
    }

    /// One paragraph for BENCHMARKS.md: what the scenario measures.
    pub(super) fn about(self) -> &'static str {
        match self {
            Id::S1 => s1_full_scan::ABOUT,
            Id::S2 => s2_rate_limit::ABOUT,
            Id::S3 => s3_pushdown::ABOUT,
            Id::S4 => s4_cache::ABOUT,
            Id::S5 => s5_serving_speed::ABOUT,
            Id::S6 => s6_first_batch::ABOUT,
            Id::S7 => s7_first_rows::ABOUT,
            Id::M => m_memory::ABOUT,
            Id::R1 => r1_restart::ABOUT,
            Id::R2 => r2_refresh::ABOUT,
            Id::R3 => r3_replica_read::ABOUT,
            Id::C => c_cost::ABOUT,
        }
    }
}

impl Bench {
    pub(super) async fn run(&mut self, id: Id) -> Res<()> {
        match id {
            Id::S1 => self.s1().await,
            Id::S2 => self.s2().await,
            Id::S3 => self.s3().await,
            Id::S4 => self.s4().await,
            Id::S5 => self.s5().await,
            Id::S6 => self.s6().await,
            Id::S7 => self.s7().await,
            Id::M => self.m().await,
            Id::R1 => self.r1().await,
            Id::R2 => self.r2().await,
            Id::R3 => self.r3().await,
            Id::C => self.c().await,
        }
    }
}
