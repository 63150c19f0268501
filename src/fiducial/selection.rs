//! Selections made of boxes: hard boxes and unions of boxes in physical
//! units ([`CutBox`], [`Selection`]), and their differentiable twin
//! ([`SoftUnion`]): each box is a product of sigmoid cuts σ(k(u − lo))·σ(k(hi − u))
//! on every observable, and the union of boxes is the soft OR
//! 1 − Π_k (1 − w_k), so that overlapping boxes never count an event twice.
//!
//! Bounds are learned in unit coordinates u = (x − x_lo)/(x_hi − x_lo) of
//! each observable's range ([`Scaler`]), so one learning rate and one slope k
//! (the transition width is 1/k of the range) serve observables of any unit.

use candle_core::{DType, Device, Tensor, Var, D};
use serde::{Deserialize, Serialize};

use crate::toys::Events;
use crate::{Error, Result};

/// Maps observables to the unit cube of their ranges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    /// Lower end of each observable's range.
    pub lo: Vec<f64>,
    /// Width of each observable's range (> 0).
    pub width: Vec<f64>,
}

impl Scaler {
    /// From (lo, hi) per observable.
    pub fn new(ranges: &[(f64, f64)]) -> Result<Self> {
        if ranges.is_empty() {
            return Err(Error::InvalidInput("selection: no observables".into()));
        }
        for (j, &(lo, hi)) in ranges.iter().enumerate() {
            if !(lo.is_finite() && hi.is_finite() && hi > lo) {
                return Err(Error::InvalidInput(format!(
                    "selection: range of observable {j} must be finite with hi > lo, got ({lo}, {hi})"
                )));
            }
        }
        Ok(Self {
            lo: ranges.iter().map(|r| r.0).collect(),
            width: ranges.iter().map(|r| r.1 - r.0).collect(),
        })
    }

    /// Number of observables.
    pub fn dim(&self) -> usize {
        self.lo.len()
    }

    /// Unit coordinate of value `x` of observable `j`.
    pub fn to_unit(&self, j: usize, x: f64) -> f64 {
        (x - self.lo[j]) / self.width[j]
    }

    /// Physical value of unit coordinate `u` of observable `j`.
    pub fn to_physical(&self, j: usize, u: f64) -> f64 {
        self.lo[j] + u * self.width[j]
    }

    /// The events as an `n × d` f64 tensor of unit coordinates; non-finite
    /// features are an error naming the event.
    pub fn unit_tensor(&self, ev: &Events, device: &Device) -> Result<Tensor> {
        let d = self.dim();
        if ev.n_features != d {
            return Err(Error::InvalidInput(format!(
                "selection: events have {} features, the selection {d}",
                ev.n_features
            )));
        }
        let mut u = Vec::with_capacity(ev.features.len());
        for (i, x) in ev.features.iter().enumerate() {
            if !x.is_finite() {
                return Err(Error::InvalidInput(format!(
                    "selection: feature {} of event {} is {x}",
                    i % d,
                    i / d
                )));
            }
            u.push(self.to_unit(i % d, *x));
        }
        Ok(Tensor::from_vec(u, (ev.len(), d), device)?)
    }
}

/// A hard box: lo ≤ x_j < hi on every observable j. In JSON an infinite
/// bound ("no cut" on that side) is `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CutBox {
    /// Lower bound per observable (−∞: no lower cut).
    #[serde(with = "open_lower")]
    pub lo: Vec<f64>,
    /// Upper bound per observable (+∞: no upper cut).
    #[serde(with = "open_upper")]
    pub hi: Vec<f64>,
}

/// (De)serialises bounds with `null` for an infinite bound of the given
/// sign (JSON has no infinities).
macro_rules! open_bounds {
    ($name:ident, $inf:expr) => {
        mod $name {
            use serde::{Deserialize, Deserializer, Serialize, Serializer};

            pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
                v.iter()
                    .map(|x| x.is_finite().then_some(*x))
                    .collect::<Vec<_>>()
                    .serialize(s)
            }

            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
                Ok(Vec::<Option<f64>>::deserialize(d)?
                    .into_iter()
                    .map(|x| x.unwrap_or($inf))
                    .collect())
            }
        }
    };
}
open_bounds!(open_lower, f64::NEG_INFINITY);
open_bounds!(open_upper, f64::INFINITY);

impl CutBox {
    /// Whether the event `x` (one value per observable) is inside.
    pub fn contains(&self, x: &[f64]) -> bool {
        x.iter()
            .zip(self.lo.iter().zip(&self.hi))
            .all(|(v, (lo, hi))| *v >= *lo && *v < *hi)
    }
}

/// A union of hard boxes (an event passes if any box contains it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// The boxes.
    pub boxes: Vec<CutBox>,
}

impl Selection {
    /// Whether the event `x` passes.
    pub fn contains(&self, x: &[f64]) -> bool {
        self.boxes.iter().any(|b| b.contains(x))
    }

    /// One flag per event of `ev`.
    pub fn mask(&self, ev: &Events) -> Vec<bool> {
        ev.features
            .chunks(ev.n_features.max(1))
            .map(|x| self.contains(x))
            .collect()
    }

    /// Number of events of `ev` that pass.
    pub fn count(&self, ev: &Events) -> usize {
        self.mask(ev).iter().filter(|&&m| m).count()
    }
}

/// A differentiable union of K boxes over d observables, bounds learned in
/// unit coordinates.
#[derive(Debug, Clone)]
pub struct SoftUnion {
    lo: Var,
    hi: Var,
    slope: f64,
    scaler: Scaler,
}

impl SoftUnion {
    /// From hard boxes (physical units), a slope k > 0 in unit coordinates,
    /// on `device` (f64).
    pub fn new(boxes: &[CutBox], scaler: &Scaler, slope: f64, device: &Device) -> Result<Self> {
        let d = scaler.dim();
        if boxes.is_empty() {
            return Err(Error::InvalidInput("selection: no boxes".into()));
        }
        if !(slope > 0.0 && slope.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "selection: slope must be positive and finite, got {slope}"
            )));
        }
        let (mut lo, mut hi) = (Vec::new(), Vec::new());
        for (k, b) in boxes.iter().enumerate() {
            if b.lo.len() != d || b.hi.len() != d {
                return Err(Error::InvalidInput(format!(
                    "selection: box {k} has {}/{} bounds, the observables are {d}",
                    b.lo.len(),
                    b.hi.len()
                )));
            }
            for j in 0..d {
                if !(b.lo[j].is_finite() && b.hi[j].is_finite()) {
                    return Err(Error::InvalidInput(format!(
                        "selection: box {k}, observable {j}: bounds must be finite"
                    )));
                }
                lo.push(scaler.to_unit(j, b.lo[j]));
                hi.push(scaler.to_unit(j, b.hi[j]));
            }
        }
        let kb = boxes.len();
        Ok(Self {
            lo: Var::from_tensor(&Tensor::from_vec(lo, (kb, d), device)?)?,
            hi: Var::from_tensor(&Tensor::from_vec(hi, (kb, d), device)?)?,
            slope,
            scaler: scaler.clone(),
        })
    }

    /// The learnable bounds (lower, upper), each `K × d` in unit coordinates.
    pub fn vars(&self) -> [Var; 2] {
        [self.lo.clone(), self.hi.clone()]
    }

    /// Number of boxes.
    pub fn n_boxes(&self) -> usize {
        self.lo.dims()[0]
    }

    /// The slope k.
    pub fn slope(&self) -> f64 {
        self.slope
    }

    /// Soft pass weights of events given as an `n × d` tensor of unit
    /// coordinates ([`Scaler::unit_tensor`]): shape `n`.
    pub fn weights(&self, u: &Tensor) -> Result<Tensor> {
        let k = self.slope;
        let u = u.unsqueeze(1)?; // n × 1 × d
        let above = candle_nn::ops::sigmoid(&(u.broadcast_sub(&self.lo.unsqueeze(0)?)? * k)?)?;
        let below = candle_nn::ops::sigmoid(&(self.hi.unsqueeze(0)?.broadcast_sub(&u)? * k)?)?;
        let per_obs = (above * below)?; // n × K × d
        let d = per_obs.dim(D::Minus1)?;
        let mut inside = per_obs.narrow(2, 0, 1)?;
        for j in 1..d {
            inside = (inside * per_obs.narrow(2, j, 1)?)?;
        }
        let inside = inside.squeeze(2)?; // n × K
        let mut outside = (1.0 - inside.narrow(1, 0, 1)?)?;
        for b in 1..self.n_boxes() {
            outside = (outside * (1.0 - inside.narrow(1, b, 1)?)?)?;
        }
        Ok((1.0 - outside.squeeze(1)?)?)
    }

    /// The current boxes in physical units (a box whose lower bound passed
    /// its upper bound on some observable is empty and kept as it is).
    pub fn boxes(&self) -> Result<Vec<CutBox>> {
        let lo = self.lo.as_tensor().to_dtype(DType::F64)?.to_vec2::<f64>()?;
        let hi = self.hi.as_tensor().to_dtype(DType::F64)?.to_vec2::<f64>()?;
        let s = &self.scaler;
        Ok(lo
            .iter()
            .zip(&hi)
            .map(|(l, h)| CutBox {
                lo: l
                    .iter()
                    .enumerate()
                    .map(|(j, &u)| s.to_physical(j, u))
                    .collect(),
                hi: h
                    .iter()
                    .enumerate()
                    .map(|(j, &u)| s.to_physical(j, u))
                    .collect(),
            })
            .collect())
    }

    /// The hard union of the current boxes.
    pub fn hard(&self) -> Result<Selection> {
        Ok(Selection {
            boxes: self.boxes()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_union_tends_to_the_hard_union() {
        let scaler = Scaler::new(&[(0.0, 10.0), (-1.0, 1.0)]).unwrap();
        let boxes = vec![
            CutBox {
                lo: vec![1.0, -0.5],
                hi: vec![3.0, 0.5],
            },
            CutBox {
                lo: vec![2.0, 0.0],
                hi: vec![6.0, 0.8],
            },
        ];
        let ev = Events {
            n_features: 2,
            features: vec![2.0, 0.0, 2.5, 0.2, 5.0, 0.7, 5.0, -0.7, 0.5, 0.0],
            weights: None,
        };
        let u = scaler.unit_tensor(&ev, &Device::Cpu).unwrap();
        let soft = SoftUnion::new(&boxes, &scaler, 2000.0, &Device::Cpu).unwrap();
        let w = soft.weights(&u).unwrap().to_vec1::<f64>().unwrap();
        let hard = Selection { boxes }.mask(&ev);
        for (w, h) in w.iter().zip(&hard) {
            assert!((w - if *h { 1.0 } else { 0.0 }).abs() < 1e-6, "{w} vs {h}");
        }
        // the overlap (2.5, 0.2) counts once
        assert!((w[1] - 1.0).abs() < 1e-9);
    }

    #[test]
    fn open_bounds_round_trip_through_json() {
        let b = CutBox {
            lo: vec![f64::NEG_INFINITY, 1.5],
            hi: vec![2.0, f64::INFINITY],
        };
        let text = serde_json::to_string(&b).unwrap();
        assert_eq!(text, r#"{"lo":[null,1.5],"hi":[2.0,null]}"#);
        assert_eq!(serde_json::from_str::<CutBox>(&text).unwrap(), b);
    }
}
