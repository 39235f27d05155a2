//! The kinds of highlight.

use serde::Serialize;

/// The kinds of highlight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Shouting,
    LoudImpulse,
    Struggle,
    Running,
    RisingTension,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Shouting,
        Kind::LoudImpulse,
        Kind::Struggle,
        Kind::Running,
        Kind::RisingTension,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Kind::Shouting => "shouting",
            Kind::LoudImpulse => "loud_impulse",
            Kind::Struggle => "struggle",
            Kind::Running => "running",
            Kind::RisingTension => "rising_tension",
        }
    }
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
    pub fn label(self) -> &'static str {
        match self {
            Kind::Shouting => "Shouting",
            Kind::LoudImpulse => "Loud impulse",
            Kind::Struggle => "Struggle",
            Kind::Running => "Running / pursuit",
            Kind::RisingTension => "Rising tension",
        }
    }
}
