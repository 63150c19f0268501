//! Fiducial cuts (issue 14): gradients of the soft selection's Z0 through
//! the fits against central finite differences, the grid search against a
//! brute-force scan, clustering, config errors, and a small end-to-end run
//! that must find both favoured regions and beat the grid's single box on
//! held-out events.

use anagrad::fiducial::ensemble::{cluster, optimise, Data, Member, Objective, Schedule};
use anagrad::fiducial::grid::best_box;
use anagrad::fiducial::run::region_boxes;
use anagrad::fiducial::selection::{CutBox, Selection, SoftUnion};
use anagrad::fiducial::{run, FiducialConfig};
use anagrad::toys::Fiducial;
use candle_core::{Device, Tensor};
use indicatif::ProgressBar;
use std::f64::consts::PI;

fn small_data(seed: u64) -> Data {
    Data::generate(&Fiducial::default(), [4000, 20000], [4000, 20000], seed).unwrap()
}

fn region_a_box() -> CutBox {
    CutBox {
        lo: vec![3.2, 0.2, 1.5],
        hi: vec![4.9, 1.4, 9.0],
    }
}

#[test]
fn soft_z0_gradient_matches_central_differences() {
    let data = small_data(5);
    let obj = Objective::new(&Fiducial::default()).unwrap();
    let start = vec![
        region_a_box(),
        CutBox {
            lo: vec![3.0, -2.9, 2.0],
            hi: vec![5.0, -1.7, 8.0],
        },
    ];
    let sel = SoftUnion::new(&start, &data.scaler, 20.0, &Device::Cpu).unwrap();
    let z = obj.soft(&sel, &data).unwrap();
    let z0 = z.to_scalar::<f64>().unwrap();
    assert!(z0 > 1.0, "soft Z0 {z0}");
    let grads = z.backward().unwrap();
    let mut worst: f64 = 0.0;
    for var in sel.vars() {
        let g = grads.get(&var).unwrap().to_vec2::<f64>().unwrap();
        let base = var.as_tensor().to_vec2::<f64>().unwrap();
        for k in 0..base.len() {
            for j in 0..base[k].len() {
                let eps = 1e-5;
                let at = |d: f64| {
                    let mut v = base.clone();
                    v[k][j] += d;
                    var.set(&Tensor::new(v, &Device::Cpu).unwrap()).unwrap();
                    obj.soft(&sel, &data).unwrap().to_scalar::<f64>().unwrap()
                };
                let fd = (at(eps) - at(-eps)) / (2.0 * eps);
                var.set(&Tensor::new(base.clone(), &Device::Cpu).unwrap())
                    .unwrap();
                let err = (g[k][j] - fd).abs() / fd.abs().max(1e-2);
                worst = worst.max(err);
                assert!(
                    err < 1e-5,
                    "bound [{k}][{j}]: autograd {} vs fd {fd}",
                    g[k][j]
                );
            }
        }
    }
    println!("worst relative error {worst:.2e}");
}

#[test]
fn optimisation_raises_soft_and_held_out_z0() {
    let data = small_data(6);
    let obj = Objective::new(&Fiducial::default()).unwrap();
    // a loose box around region A
    let start = vec![CutBox {
        lo: vec![2.0, -0.3, 0.5],
        hi: vec![6.5, 1.9, 9.0],
    }];
    let before = obj
        .z(data.hard_yields(
            &Selection {
                boxes: start.clone(),
            },
            true,
        ))
        .unwrap();
    let sched = Schedule {
        steps: 80,
        lr: 0.01,
        slope: 50.0,
    };
    let m = optimise(0, &start, &data, &obj, &sched).unwrap();
    assert!(m.failure.is_none(), "{:?}", m.failure);
    assert!(m.soft_z.1 > m.soft_z.0 + 0.3, "soft {:?}", m.soft_z);
    assert!(
        m.hard_z_test > before + 0.3,
        "held-out {before} -> {}",
        m.hard_z_test
    );
    // it stays in region A: φ inside (0, π/2) up to the sigmoid width
    let b = &m.boxes[0];
    assert!(b.lo[1] > -0.3 && b.hi[1] < PI / 2.0 + 0.4, "{b:?}");
}

#[test]
fn grid_search_finds_the_brute_force_best_box() {
    let data = small_data(7);
    let obj = Objective::new(&Fiducial::default()).unwrap();
    let cells = 4;
    // refine every box: the winner must be the exact best of all 10^3 boxes
    let g = best_box(&data, &obj, cells, 0.1, 1000, false).unwrap();
    assert_eq!(g.boxes_scanned, 1000);
    let edge = |j: usize, e: usize| -> f64 {
        let (lo, hi) = [(1.0, 8.0), (-PI, PI), (0.0, 8.0)][j];
        if e == 0 {
            f64::NEG_INFINITY
        } else if e == cells {
            f64::INFINITY
        } else {
            lo + (hi - lo) * e as f64 / cells as f64
        }
    };
    let mut best = f64::NEG_INFINITY;
    let pairs: Vec<(usize, usize)> = (0..cells)
        .flat_map(|a| (a + 1..=cells).map(move |b| (a, b)))
        .collect();
    for p0 in &pairs {
        for p1 in &pairs {
            for p2 in &pairs {
                let b = CutBox {
                    lo: vec![edge(0, p0.0), edge(1, p1.0), edge(2, p2.0)],
                    hi: vec![edge(0, p0.1), edge(1, p1.1), edge(2, p2.1)],
                };
                let z = obj
                    .z(data.hard_yields(&Selection { boxes: vec![b] }, false))
                    .unwrap();
                best = best.max(z);
            }
        }
    }
    assert!(
        (g.z_chosen_on - best).abs() < 1e-9,
        "{} vs {best}",
        g.z_chosen_on
    );
    // the closed-form prefilter alone ranks the exact winner near the top
    let g10 = best_box(&data, &obj, cells, 0.1, 10, false).unwrap();
    assert!((g10.z_chosen_on - best).abs() < 1e-9);
}

#[test]
fn clusters_group_identical_optima_and_name_regions() {
    let data = small_data(8);
    let obj = Objective::new(&Fiducial::default()).unwrap();
    let member = |i: usize, b: CutBox| -> Member {
        let sel = Selection {
            boxes: vec![b.clone()],
        };
        Member {
            index: i,
            start: vec![b.clone()],
            boxes: vec![b],
            soft_z: (0.0, 0.0),
            hard_z_train: obj.z(data.hard_yields(&sel, false)).unwrap(),
            hard_z_test: obj.z(data.hard_yields(&sel, true)).unwrap(),
            test_yields: data.hard_yields(&sel, true),
            exact_z: None,
            failure: None,
        }
    };
    let b_box = CutBox {
        lo: vec![3.2, -PI + 0.2, 1.5],
        hi: vec![4.9, -PI + 1.4, 9.0],
    };
    let members = vec![
        member(0, region_a_box()),
        member(1, b_box.clone()),
        member(2, region_a_box()),
    ];
    let regions = region_boxes(&Fiducial::default());
    let c = cluster(&members, &data, 0.5, &regions).unwrap();
    assert_eq!(c.len(), 2);
    let a = c.iter().find(|c| c.members.contains(&0)).unwrap();
    assert!(a.members.contains(&2));
    assert!(a.region_fractions[0].1 > 0.99 && a.region_fractions[1].1 < 0.01);
    let b = c.iter().find(|c| c.members.contains(&1)).unwrap();
    assert!(b.region_fractions[1].1 > 0.99);
    assert!(cluster(&members, &data, 0.0, &regions).is_err());
}

#[test]
fn bad_configs_and_inputs_are_errors_naming_the_key() {
    let err = |t: &str| FiducialConfig::from_toml(t).unwrap_err().to_string();
    assert!(err("[ensemble]\nslope = -1.0").contains("ensemble.slope"));
    assert!(err("[ensemble]\nmembers = 0").contains("ensemble.members"));
    assert!(err("[data]\nn_train = [10, 100000]").contains("data.n_train"));
    assert!(err("[grid]\ncells = 1").contains("grid.cells"));
    assert!(err("[toy]\nkappa = 1.5").contains("toy"));
    assert!(err("[ensemble]\nmember = 3").contains("unknown field"));
    let data = small_data(9);
    assert!(SoftUnion::new(&[region_a_box()], &data.scaler, 0.0, &Device::Cpu).is_err());
    assert!(SoftUnion::new(&[], &data.scaler, 10.0, &Device::Cpu).is_err());
    let short = CutBox {
        lo: vec![0.0],
        hi: vec![1.0],
    };
    assert!(SoftUnion::new(&[short], &data.scaler, 10.0, &Device::Cpu).is_err());
    assert!(Data::generate(&Fiducial::default(), [0, 10], [10, 10], 1).is_err());
}

#[test]
fn small_run_finds_both_regions_and_beats_the_grid_box() {
    let cfg = FiducialConfig::from_toml(
        "seed = 3\n[data]\nn_train = [6000, 30000]\nn_test = [20000, 100000]\n\
         [ensemble]\nmembers = 6\nsteps = 120\ncommittee_steps = 80\n[grid]\ncells = 12\nrefine = 100\n",
    )
    .unwrap();
    let r = run(&cfg, &ProgressBar::hidden()).unwrap();
    for (name, found) in &r.regions_found {
        assert!(
            !found.is_empty(),
            "region {name} not found: {:#?}",
            r.clusters
        );
    }
    assert_eq!(r.committee.boxes.len(), 2, "{:?}", r.committee.boxes);
    assert!(
        r.committee.hard_z_test > r.grid_train.hard_z_test,
        "committee {} vs grid {}",
        r.committee.hard_z_test,
        r.grid_train.hard_z_test
    );
    println!("{}", r.to_markdown(&anagrad::toys::fiducial::FEATURES));
}
