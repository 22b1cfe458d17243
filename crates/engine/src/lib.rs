//! Risk gate, execution, monitoring, assignment (in progress).

pub mod live;
