//! `intentions`, `beliefs` and `claims`: an agent's reflection records in --tenant.

use crate::app::{Global, parse_time};
use crate::output;
use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use continuum_core::reflection::{
    Belief, BeliefStatus, Claim, ClaimStatus, ContradictionStatus, Intention, IntentionStatus,
};
use continuum_core::{SessionId, Timestamp};
use continuum_engine::{
    BeliefRequest, CalibrationReport, CalibrationRequest, ClaimRequest, ContradictionView,
    IntentionRequest,
};

#[derive(Debug, Args)]
pub struct IntentionsArgs {
    #[command(subcommand)]
    pub action: IntentionsAction,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum IntentionState {
    Pending,
    Done,
    Abandoned,
}

#[derive(Debug, Subcommand)]
pub enum IntentionsAction {
    /// Set an intention: something to do, kept across sessions until done or abandoned.
    Add {
        text: String,
        /// 1 (lowest) to 10 (highest).
        #[arg(long, default_value_t = 5)]
        priority: i64,
        /// The session it belongs to.
        #[arg(long)]
        session: Option<String>,
    },
    /// Intentions, highest priority first, then newest.
    List {
        #[arg(long, value_enum)]
        status: Option<IntentionState>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Mark a pending intention done.
    Done { id: String },
    /// Abandon a pending intention.
    Abandon {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// The pending intentions grouped high (7-10), medium (4-6) and low, for a session start.
    Resume,
}

fn intention_line(i: &Intention) -> String {
    format!(
        "{}  {:<9}  p{:<2}  {}{}{}",
        i.id,
        i.status.as_str(),
        i.priority,
        output::preview(&i.text, 80),
        i.session
            .as_ref()
            .map(|s| format!("  [{s}]"))
            .unwrap_or_default(),
        i.reason
            .as_ref()
            .map(|r| format!("  ({})", output::preview(r, 60)))
            .unwrap_or_default()
    )
}

pub async fn intentions(g: &Global, a: IntentionsArgs) -> Result<()> {
    let tenant = g.tenant()?;
    let (engine, _) = g.open().await?;
    match a.action {
        IntentionsAction::Add {
            text,
            priority,
            session,
        } => {
            let req = IntentionRequest {
                text,
                priority: Some(priority),
                session: session.map(SessionId::new).transpose()?,
            };
            let i = engine.intention_add(&tenant, &req).await?;
            if g.json {
                return output::json(&i);
            }
            println!("{}", intention_line(&i));
        }
        IntentionsAction::List { status, limit } => {
            let status = status.map(|s| match s {
                IntentionState::Pending => IntentionStatus::Pending,
                IntentionState::Done => IntentionStatus::Done,
                IntentionState::Abandoned => IntentionStatus::Abandoned,
            });
            let list = engine.intentions(&tenant, status, limit).await?;
            if g.json {
                return output::json(&serde_json::json!({ "intentions": list }));
            }
            if list.is_empty() {
                println!("No intentions.");
            }
            list.iter().for_each(|i| println!("{}", intention_line(i)));
        }
        IntentionsAction::Done { id } => {
            let i = engine.intention_done(&tenant, &id.parse()?).await?;
            if g.json {
                return output::json(&i);
            }
            println!("{}", intention_line(&i));
        }
        IntentionsAction::Abandon { id, reason } => {
            let i = engine
                .intention_abandon(&tenant, &id.parse()?, reason.as_deref())
                .await?;
            if g.json {
                return output::json(&i);
            }
            println!("{}", intention_line(&i));
        }
        IntentionsAction::Resume => {
            let r = engine.intention_resume(&tenant).await?;
            if g.json {
                return output::json(&r);
            }
            println!("{}", r.summary);
            for (name, group) in [("High", &r.high), ("Medium", &r.medium), ("Low", &r.low)] {
                if !group.is_empty() {
                    println!("\n{name}");
                    group
                        .iter()
                        .for_each(|i| println!("  {}", intention_line(i)));
                }
            }
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct BeliefsArgs {
    #[command(subcommand)]
    pub action: BeliefsAction,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BeliefState {
    Active,
    Superseded,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ContradictionState {
    Open,
    Resolved,
}

#[derive(Debug, Subcommand)]
pub enum BeliefsAction {
    /// Record a belief; contradictions with the domain's active beliefs are reported and kept.
    Add {
        text: String,
        /// Beliefs are compared within a domain.
        #[arg(long, default_value = "general")]
        domain: String,
        /// From 0 to 1.
        #[arg(long, default_value_t = 0.8)]
        confidence: f64,
        /// Why it is held (repeat for more, at most 10).
        #[arg(long)]
        evidence: Vec<String>,
    },
    /// Beliefs, newest first.
    List {
        #[arg(long)]
        domain: Option<String>,
        #[arg(long, value_enum)]
        status: Option<BeliefState>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Contradictions found between beliefs, newest first.
    Contradictions {
        #[arg(long, value_enum)]
        status: Option<ContradictionState>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Resolve a contradiction: keep one of its beliefs, the other is superseded.
    Resolve {
        /// The contradiction's id.
        id: String,
        /// The belief to keep.
        #[arg(long)]
        keep: String,
    },
}

fn belief_line(b: &Belief) -> String {
    format!(
        "{}  {:<10}  {:.2}  {:<12}  {}",
        b.id,
        b.status.as_str(),
        b.confidence,
        b.domain,
        output::preview(&b.text, 80)
    )
}

fn contradiction_lines(c: &ContradictionView) -> String {
    let k = &c.contradiction;
    format!(
        "{}  {:<8}  {} ({}{})\n    earlier {}: {}\n    later   {}: {}\n    {}{}",
        k.id,
        k.status.as_str(),
        k.kind,
        k.method,
        k.similarity
            .map(|s| format!(", cosine {s:.2}"))
            .unwrap_or_default(),
        k.earlier,
        c.earlier_text.as_deref().unwrap_or("(gone)"),
        k.later,
        c.later_text.as_deref().unwrap_or("(gone)"),
        k.evidence,
        k.kept
            .map(|id| format!("\n    kept {id}"))
            .unwrap_or_default()
    )
}

pub async fn beliefs(g: &Global, a: BeliefsArgs) -> Result<()> {
    let tenant = g.tenant()?;
    // A new belief is compared by meaning too when an embedder is configured.
    let (engine, _) = match a.action {
        BeliefsAction::Add { .. } => g.open_semantic().await?,
        _ => g.open().await?,
    };
    match a.action {
        BeliefsAction::Add {
            text,
            domain,
            confidence,
            evidence,
        } => {
            let req = BeliefRequest {
                text,
                domain: Some(domain),
                confidence: Some(confidence),
                evidence,
            };
            let r = engine.belief_add(&tenant, &req).await?;
            if g.json {
                return output::json(&r);
            }
            println!("{}", belief_line(&r.belief));
            println!(
                "compared with {} active belief{} of '{}': {} contradiction{}",
                r.compared,
                if r.compared == 1 { "" } else { "s" },
                r.belief.domain,
                r.contradictions.len(),
                if r.contradictions.len() == 1 { "" } else { "s" }
            );
            r.contradictions
                .iter()
                .for_each(|c| println!("{}", contradiction_lines(c)));
        }
        BeliefsAction::List {
            domain,
            status,
            limit,
        } => {
            let status = status.map(|s| match s {
                BeliefState::Active => BeliefStatus::Active,
                BeliefState::Superseded => BeliefStatus::Superseded,
            });
            let list = engine
                .beliefs(&tenant, domain.as_deref(), status, limit)
                .await?;
            if g.json {
                return output::json(&serde_json::json!({ "beliefs": list }));
            }
            if list.is_empty() {
                println!("No beliefs.");
            }
            list.iter().for_each(|b| println!("{}", belief_line(b)));
        }
        BeliefsAction::Contradictions { status, limit } => {
            let status = status.map(|s| match s {
                ContradictionState::Open => ContradictionStatus::Open,
                ContradictionState::Resolved => ContradictionStatus::Resolved,
            });
            let list = engine.contradictions(&tenant, status, limit).await?;
            if g.json {
                return output::json(&serde_json::json!({ "contradictions": list }));
            }
            if list.is_empty() {
                println!("No contradictions.");
            }
            list.iter()
                .for_each(|c| println!("{}", contradiction_lines(c)));
        }
        BeliefsAction::Resolve { id, keep } => {
            let r = engine
                .contradiction_resolve(&tenant, &id.parse()?, &keep.parse()?)
                .await?;
            if g.json {
                return output::json(&r);
            }
            println!("kept        {}", belief_line(&r.kept));
            println!("superseded  {}", belief_line(&r.superseded));
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct ClaimsArgs {
    #[command(subcommand)]
    pub action: ClaimsAction,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ClaimState {
    Open,
    Correct,
    Wrong,
}

#[derive(Debug, Subcommand)]
pub enum ClaimsAction {
    /// Record a claim with a confidence, to verify later.
    Add {
        text: String,
        /// How sure, from 0 to 1.
        #[arg(long)]
        confidence: f64,
        /// Calibration is reported per category.
        #[arg(long, default_value = "general")]
        category: String,
    },
    /// Record whether a claim turned out correct (once): --correct or --wrong.
    #[command(group(clap::ArgGroup::new("outcome").required(true).args(["correct", "wrong"])))]
    Verify {
        id: String,
        #[arg(long)]
        correct: bool,
        #[arg(long)]
        wrong: bool,
        #[arg(long)]
        notes: Option<String>,
    },
    /// Claims, newest first.
    List {
        #[arg(long)]
        category: Option<String>,
        #[arg(long, value_enum)]
        status: Option<ClaimState>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// How well confidences matched outcomes: Brier score, reliability table, ECE, advice.
    Calibration {
        #[arg(long)]
        category: Option<String>,
        /// Claims made at or after this time (RFC 3339 or YYYY-MM-DD).
        #[arg(long, value_parser = parse_time)]
        since: Option<Timestamp>,
        /// Claims made before this time (RFC 3339 or YYYY-MM-DD).
        #[arg(long, value_parser = parse_time)]
        until: Option<Timestamp>,
        /// Confidence bins (1 to 20).
        #[arg(long, default_value_t = 10)]
        bins: usize,
    },
}

fn claim_line(c: &Claim) -> String {
    format!(
        "{}  {:<7}  {:.2}  {:<12}  {}{}",
        c.id,
        c.status.as_str(),
        c.confidence,
        c.category,
        output::preview(&c.text, 80),
        c.notes
            .as_ref()
            .map(|n| format!("  ({})", output::preview(n, 60)))
            .unwrap_or_default()
    )
}

fn print_report(r: &CalibrationReport) {
    let name = r.category.as_deref().unwrap_or("all categories");
    let Some(brier) = r.brier else {
        println!("{name}: no verified claims ({} open)", r.open);
        return;
    };
    println!(
        "{name}: {} verified ({} correct), {} open; Brier {brier:.3}, ECE {:.3}; over-confident {:.0}%, under-confident {:.0}%",
        r.claims,
        r.correct,
        r.open,
        r.ece.unwrap_or(0.0),
        r.over_confident * 100.0,
        r.under_confident * 100.0
    );
    println!("  {}", r.advice);
    println!(
        "  {:<13} {:>6} {:>11} {:>9}",
        "confidence", "claims", "mean conf.", "accuracy"
    );
    for b in r.bins.iter().filter(|b| b.count > 0) {
        println!(
            "  {:.2} – {:.2}   {:>6} {:>11.2} {:>9.2}",
            b.low,
            b.high,
            b.count,
            b.confidence.unwrap_or(0.0),
            b.accuracy.unwrap_or(0.0)
        );
    }
}

pub async fn claims(g: &Global, a: ClaimsArgs) -> Result<()> {
    let tenant = g.tenant()?;
    let (engine, _) = g.open().await?;
    match a.action {
        ClaimsAction::Add {
            text,
            confidence,
            category,
        } => {
            let req = ClaimRequest {
                text,
                confidence,
                category: Some(category),
            };
            let c = engine.claim_add(&tenant, &req).await?;
            if g.json {
                return output::json(&c);
            }
            println!("{}", claim_line(&c));
        }
        ClaimsAction::Verify {
            id,
            correct,
            wrong: _,
            notes,
        } => {
            let c = engine
                .claim_verify(&tenant, &id.parse()?, correct, notes.as_deref())
                .await?;
            if g.json {
                return output::json(&c);
            }
            println!("{}", claim_line(&c));
        }
        ClaimsAction::List {
            category,
            status,
            limit,
        } => {
            let status = status.map(|s| match s {
                ClaimState::Open => ClaimStatus::Open,
                ClaimState::Correct => ClaimStatus::Correct,
                ClaimState::Wrong => ClaimStatus::Wrong,
            });
            let list = engine
                .claims(&tenant, category.as_deref(), status, limit)
                .await?;
            if g.json {
                return output::json(&serde_json::json!({ "claims": list }));
            }
            if list.is_empty() {
                println!("No claims.");
            }
            list.iter().for_each(|c| println!("{}", claim_line(c)));
        }
        ClaimsAction::Calibration {
            category,
            since,
            until,
            bins,
        } => {
            let req = CalibrationRequest {
                category,
                since,
                until,
                bins: Some(bins),
            };
            let r = engine.calibration(&tenant, &req).await?;
            if g.json {
                return output::json(&r);
            }
            print_report(&r.overall);
            if r.overall.category.is_none() {
                for c in &r.categories {
                    println!();
                    print_report(c);
                }
            }
        }
    }
    Ok(())
}
