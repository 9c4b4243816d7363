//! The judgement: the verdict on one run (`verdict`), and the report that
//! says it as text or JSON (`report/`).

mod cause;
pub mod known_bug;
pub mod report;
pub mod verdict;
