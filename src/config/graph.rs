//! Dependency checks across services: unknown names, self-dependencies,
//! `completed` on a longrun, and cycles, named `a -> b -> a`.
//!
//! Iterative (an explicit stack), so a long dependency chain in user input cannot
//! overflow the stack.

use super::checker::Checker;
use super::{Condition, ServiceSpec, ServiceType};

/// Check the dependencies of `services` (each with the path it was read at).
pub(super) fn check(c: &mut Checker, services: &[(String, ServiceSpec)]) {
    let index = |name: &str| services.iter().position(|(_, s)| s.name == name);
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); services.len()];
    for (i, (path, spec)) in services.iter().enumerate() {
        for (j, dep) in spec.dependencies.iter().enumerate() {
            let at = format!("{path}.dependencies[{j}]");
            match index(&dep.service) {
                None => c.error(at, format!("unknown service {:?}", dep.service)),
                Some(k) if k == i => c.error(at, "a service cannot depend on itself"),
                Some(k) => {
                    let target = &services[k].1;
                    if dep.condition == Condition::Completed
                        && target.service_type == ServiceType::Longrun
                    {
                        c.error(
                            at,
                            format!(
                                "condition \"completed\" needs a oneshot, but {:?} is a longrun",
                                dep.service
                            ),
                        );
                    }
                    edges[i].push(k);
                }
            }
        }
    }
    for cycle in cycles(&edges) {
        let mut names: Vec<&str> = cycle.iter().map(|&i| services[i].1.name.as_str()).collect();
        names.push(services[cycle[0]].1.name.as_str());
        let first = &services[cycle[0]].0;
        c.error(
            format!("{first}.dependencies"),
            format!("dependency cycle: {}", names.join(" -> ")),
        );
    }
}

/// Every elementary cycle found by a depth-first search, each reported once,
/// starting at its lowest index.
fn cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    const NEW: u8 = 0;
    const ACTIVE: u8 = 1;
    const DONE: u8 = 2;
    let mut color = vec![NEW; edges.len()];
    let mut found: Vec<Vec<usize>> = Vec::new();
    for start in 0..edges.len() {
        if color[start] != NEW {
            continue;
        }
        // (node, next edge to try); `path` mirrors the active nodes.
        let mut stack = vec![(start, 0usize)];
        let mut path = vec![start];
        color[start] = ACTIVE;
        while let Some((node, next)) = stack.last_mut() {
            let node = *node;
            if let Some(&to) = edges[node].get(*next) {
                *next += 1;
                match color[to] {
                    NEW => {
                        color[to] = ACTIVE;
                        stack.push((to, 0));
                        path.push(to);
                    }
                    ACTIVE => {
                        let from = path.iter().position(|&n| n == to).unwrap_or(0);
                        let cycle = canonical(&path[from..]);
                        if !found.contains(&cycle) {
                            found.push(cycle);
                        }
                    }
                    _ => {}
                }
            } else {
                color[node] = DONE;
                stack.pop();
                path.pop();
            }
        }
    }
    found
}

/// Rotate a cycle so it starts at its lowest index.
fn canonical(cycle: &[usize]) -> Vec<usize> {
    let at = cycle
        .iter()
        .enumerate()
        .min_by_key(|(_, n)| **n)
        .map_or(0, |(i, _)| i);
    cycle[at..].iter().chain(&cycle[..at]).copied().collect()
}

/// A start order: dependencies before dependents, ties in file order.
/// Services in a cycle (an invalid config) come last, in file order.
pub fn start_order(services: &[ServiceSpec]) -> Vec<usize> {
    let mut placed = vec![false; services.len()];
    let mut order = Vec::with_capacity(services.len());
    loop {
        let before = order.len();
        for (i, spec) in services.iter().enumerate() {
            let ready = spec.dependencies.iter().all(|d| {
                services
                    .iter()
                    .position(|s| s.name == d.service)
                    .is_none_or(|k| placed[k])
            });
            if !placed[i] && ready {
                placed[i] = true;
                order.push(i);
            }
        }
        if order.len() == before {
            break;
        }
    }
    order.extend((0..services.len()).filter(|&i| !placed[i]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_cycle_once() {
        // 0 -> 1 -> 2 -> 0, and 3 -> 3 is excluded upstream (self-dependency).
        let edges = vec![vec![1], vec![2], vec![0], vec![0]];
        assert_eq!(cycles(&edges), vec![vec![0, 1, 2]]);
    }

    #[test]
    fn two_separate_cycles() {
        let edges = vec![vec![1], vec![0], vec![3], vec![2]];
        assert_eq!(cycles(&edges), vec![vec![0, 1], vec![2, 3]]);
    }

    #[test]
    fn a_long_chain_does_not_overflow() {
        let n = 100_000;
        let edges: Vec<Vec<usize>> = (0..n)
            .map(|i| if i + 1 < n { vec![i + 1] } else { vec![] })
            .collect();
        assert!(cycles(&edges).is_empty());
    }
}
