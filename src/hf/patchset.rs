//! pyhf patchsets (schema 1.0.0): a background-only workspace plus a set of
//! named RFC 6902 patches, one per signal hypothesis, as published on HEPData.
//!
//! ```json
//! {"metadata": {"name": "...", "description": "...", "references": {"hepdata": "ins1234567"},
//!               "digests": {"sha256": "..."}, "labels": ["m1", "m2"]},
//!  "patches": [{"metadata": {"name": "C1N2_300_100", "values": [300, 100]},
//!               "patch": [{"op": "add", "path": "/channels/0/samples/5", "value": {...}}]}],
//!  "version": "1.0.0"}
//! ```
//!
//! [`PatchSet::apply_json`] does what `pyhf patchset apply` does: it checks
//! the patchset's `sha256` digest of the background-only workspace (pyhf's
//! `utils.digest`: SHA-256 of Python's `json.dumps(spec, sort_keys=True,
//! ensure_ascii=False)`, reproduced here number for number), applies the
//! named patch and validates the result. Digests with other algorithms
//! (`md5`) are not checked; each gives a warning.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::{Map, Value};

use super::spec::{patched_workspace, read_json, Validation, Warning, Workspace};
use crate::{Error, Result};

/// One patch of a [`PatchSet`]: its name, the values of the patchset's
/// labels (e.g. the signal masses) and the RFC 6902 operations.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    /// Patch name (unique in the patchset).
    pub name: String,
    /// One value (number or string) per label of the patchset.
    pub values: Vec<Value>,
    /// The RFC 6902 operations, as JSON.
    pub operations: Value,
}

/// A pyhf patchset (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchSet {
    /// Where the patchset came from (file name), used in errors.
    pub label: String,
    /// `metadata.name`, if present.
    pub name: Option<String>,
    /// `metadata.description`.
    pub description: String,
    /// `metadata.references` (e.g. `{"hepdata": "ins1234567"}`).
    pub references: Map<String, Value>,
    /// `metadata.digests` of the background-only workspace: algorithm → hex digest.
    pub digests: BTreeMap<String, String>,
    /// `metadata.labels`: the names of the values of each patch.
    pub labels: Vec<String>,
    /// The patches, in file order.
    pub patches: Vec<Patch>,
    /// Schema version; only `"1.0.0"` is accepted.
    pub version: String,
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl PatchSet {
    /// Reads and checks a patchset file.
    pub fn from_path(path: &Path) -> Result<PatchSet> {
        Self::from_value(&read_json(path)?, &path.display().to_string())
    }

    /// Parses and checks a patchset from JSON text; `label` names it in errors.
    pub fn from_json_str(s: &str, label: &str) -> Result<PatchSet> {
        let v: Value = serde_json::from_str(s).map_err(|source| Error::Json {
            context: label.to_owned(),
            source,
        })?;
        Self::from_value(&v, label)
    }

    /// Checks a parsed patchset (pyhf's schema and its uniqueness rules);
    /// `label` names it in errors.
    pub fn from_value(v: &Value, label: &str) -> Result<PatchSet> {
        let err = |loc: &str, msg: String| Error::Patch {
            patch: format!("patchset {label}"),
            message: format!("{loc}: {msg}"),
        };
        let object = |v: &'_ Value, loc: &str| -> Result<Map<String, Value>> {
            v.as_object()
                .cloned()
                .ok_or_else(|| err(loc, format!("expected an object, found {}", json_type(v))))
        };
        let field = |m: &Map<String, Value>, key: &str, loc: &str| -> Result<Value> {
            m.get(key)
                .cloned()
                .ok_or_else(|| err(loc, format!("missing required key '{key}'")))
        };
        let string = |v: &Value, loc: &str| -> Result<String> {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| err(loc, format!("expected a string, found {}", json_type(v))))
        };
        let array = |v: &Value, loc: &str| -> Result<Vec<Value>> {
            v.as_array()
                .cloned()
                .ok_or_else(|| err(loc, format!("expected an array, found {}", json_type(v))))
        };

        let top = object(v, "patchset")?;
        for k in top.keys() {
            if !["metadata", "patches", "version"].contains(&k.as_str()) {
                return Err(err(
                    "patchset",
                    format!("unknown key '{k}' (allowed: metadata, patches, version)"),
                ));
            }
        }
        let version = string(&field(&top, "version", "patchset")?, "version")?;
        if version != "1.0.0" {
            return Err(err(
                "version",
                format!("unsupported patchset version '{version}', expected '1.0.0'"),
            ));
        }
        let meta = object(&field(&top, "metadata", "patchset")?, "metadata")?;
        let description = string(
            &field(&meta, "description", "metadata")?,
            "metadata.description",
        )?;
        let name = meta
            .get("name")
            .map(|n| string(n, "metadata.name"))
            .transpose()?;
        let references = object(
            &field(&meta, "references", "metadata")?,
            "metadata.references",
        )?;
        let mut digests = BTreeMap::new();
        for (alg, d) in object(&field(&meta, "digests", "metadata")?, "metadata.digests")? {
            let d = string(&d, &format!("metadata.digests.{alg}"))?;
            digests.insert(alg, d);
        }
        if digests.is_empty() {
            return Err(err(
                "metadata.digests",
                "expected at least one digest".into(),
            ));
        }
        let labels = array(&field(&meta, "labels", "metadata")?, "metadata.labels")?
            .iter()
            .enumerate()
            .map(|(i, l)| string(l, &format!("metadata.labels[{i}]")))
            .collect::<Result<Vec<_>>>()?;
        if labels.is_empty() {
            return Err(err("metadata.labels", "expected at least one label".into()));
        }
        let list = array(&field(&top, "patches", "patchset")?, "patches")?;
        if list.is_empty() {
            return Err(err("patches", "expected at least one patch".into()));
        }
        let mut patches: Vec<Patch> = Vec::with_capacity(list.len());
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for (i, p) in list.iter().enumerate() {
            let loc = format!("patches[{i}]");
            let pm = object(p, &loc)?;
            for k in pm.keys() {
                if !["metadata", "patch"].contains(&k.as_str()) {
                    return Err(err(
                        &loc,
                        format!("unknown key '{k}' (allowed: metadata, patch)"),
                    ));
                }
            }
            let mloc = format!("{loc}.metadata");
            let md = object(&field(&pm, "metadata", &loc)?, &mloc)?;
            let pname = string(&field(&md, "name", &mloc)?, &format!("{mloc}.name"))?;
            let loc = format!("{loc} ('{pname}')");
            let values = array(&field(&md, "values", &mloc)?, &format!("{mloc}.values"))?;
            if let Some(x) = values.iter().find(|x| !(x.is_number() || x.is_string())) {
                return Err(err(
                    &format!("{loc}.metadata.values"),
                    format!("values must be numbers or strings, found {}", json_type(x)),
                ));
            }
            if values.len() != labels.len() {
                return Err(err(
                    &format!("{loc}.metadata.values"),
                    format!(
                        "has {} values, the patchset has {} labels ({})",
                        values.len(),
                        labels.len(),
                        labels.join(", ")
                    ),
                ));
            }
            let operations = field(&pm, "patch", &loc)?;
            if let Err(e) = serde_json::from_value::<json_patch::Patch>(operations.clone()) {
                return Err(err(
                    &format!("{loc}.patch"),
                    format!("not a valid RFC 6902 JSON patch: {e}"),
                ));
            }
            if let Some(j) = by_name.insert(pname.clone(), i) {
                return Err(err(
                    &loc,
                    format!("duplicate patch name (also patches[{j}])"),
                ));
            }
            if let Some(j) = patches.iter().position(|q| q.values == values) {
                return Err(err(
                    &loc,
                    format!(
                        "the same values {} as patches[{j}] ('{}')",
                        Value::Array(values),
                        patches[j].name
                    ),
                ));
            }
            patches.push(Patch {
                name: pname,
                values,
                operations,
            });
        }
        Ok(PatchSet {
            label: label.to_owned(),
            name,
            description,
            references,
            digests,
            labels,
            patches,
            version,
        })
    }

    /// The patch names, in file order.
    pub fn names(&self) -> Vec<&str> {
        self.patches.iter().map(|p| p.name.as_str()).collect()
    }

    /// The patch named `name`; the error lists the available names.
    pub fn patch(&self, name: &str) -> Result<&Patch> {
        if let Some(p) = self.patches.iter().find(|p| p.name == name) {
            return Ok(p);
        }
        const SHOWN: usize = 40;
        let names = self.names();
        let mut list = names
            .iter()
            .take(SHOWN)
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
        if names.len() > SHOWN {
            list += &format!(
                ", ... ({} more; `anagrad patchset ls {}` lists them all)",
                names.len() - SHOWN,
                self.label
            );
        }
        Err(Error::Patch {
            patch: format!("patchset {}", self.label),
            message: format!("no patch named '{name}' (available: {list})"),
        })
    }

    /// Checks the patchset's digests of the background-only workspace
    /// against `bkg`, the workspace JSON exactly as read from its file (the
    /// digest depends on how its numbers are spelled, e.g. `1` vs `1.0`).
    /// A `sha256` mismatch is an error (the patches were made for another
    /// workspace, and their paths index channels and samples by position);
    /// digests with other algorithms are not checked and give a warning.
    pub fn verify(&self, bkg: &Value) -> Result<Vec<Warning>> {
        let mut warnings = Vec::new();
        for (alg, expected) in &self.digests {
            if alg == "sha256" {
                let got = workspace_digest(bkg);
                if !got.eq_ignore_ascii_case(expected) {
                    return Err(Error::Patch {
                        patch: format!("patchset {}", self.label),
                        message: format!(
                            "metadata.digests.sha256: the patchset was made for a background-only workspace with digest {expected}, this one has {got} (another version of the likelihood, or a workspace modified before applying the patchset?)"
                        ),
                    });
                }
            } else {
                warnings.push(Warning::new(
                    format!("patchset {}: metadata.digests.{alg}", self.label),
                    "digest not checked (anagrad checks sha256 digests only)",
                ));
            }
        }
        Ok(warnings)
    }

    /// The background-only JSON `bkg` with the patch `name` applied (no
    /// digest check, no validation).
    pub fn apply_value(&self, bkg: &Value, name: &str) -> Result<Value> {
        let p = self.patch(name)?;
        let ops: json_patch::Patch =
            serde_json::from_value(p.operations.clone()).map_err(|e| Error::Patch {
                patch: self.patch_label(name),
                message: format!("not a valid RFC 6902 JSON patch: {e}"),
            })?;
        let mut v = bkg.clone();
        json_patch::patch(&mut v, &ops).map_err(|e| Error::Patch {
            patch: self.patch_label(name),
            message: e.to_string(),
        })?;
        Ok(v)
    }

    /// `pyhf patchset apply`: checks the digests against `bkg` (the
    /// background-only workspace JSON as read from its file, see
    /// [`PatchSet::verify`]), applies the patch `name` and validates the
    /// result. Returns the workspace and the digest warnings.
    pub fn apply_json(
        &self,
        bkg: &Value,
        name: &str,
        validation: Validation,
    ) -> Result<(Workspace, Vec<Warning>)> {
        self.patch(name)?;
        let warnings = self.verify(bkg)?;
        let v = self.apply_value(bkg, name)?;
        let ws = patched_workspace(&v, &self.patch_label(name), validation)?;
        Ok((ws, warnings))
    }

    /// Applies the patch `name` to a parsed workspace and validates the
    /// result ([`Validation::Lenient`]). The digests are not checked: a
    /// parsed workspace no longer knows how its file spelled its numbers;
    /// use [`PatchSet::apply_json`] on the file's JSON for that.
    pub fn apply(&self, ws: &Workspace, name: &str) -> Result<Workspace> {
        let v = self.apply_value(&ws.to_value(), name)?;
        patched_workspace(&v, &self.patch_label(name), Validation::Lenient)
    }

    fn patch_label(&self, name: &str) -> String {
        format!("'{name}' of patchset {}", self.label)
    }
}

/// pyhf's `Workspace` digest (`pyhf.utils.digest(spec)`): the lowercase hex
/// SHA-256 of Python's `json.dumps(spec, sort_keys=True, ensure_ascii=False)`
/// encoded as UTF-8.
pub fn workspace_digest(spec: &Value) -> String {
    let mut s = String::new();
    python_dumps(spec, &mut s);
    sha256::hex(s.as_bytes())
}

/// Python's `json.dumps(v, sort_keys=True, ensure_ascii=False)`: separators
/// `", "` and `": "`, integers as written, floats as Python's `repr`.
fn python_dumps(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else {
                python_float(n.as_f64().unwrap_or(f64::NAN), out);
            }
        }
        Value::String(s) => python_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_dumps(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_string(k, out);
                out.push_str(": ");
                python_dumps(&m[k], out);
            }
            out.push('}');
        }
    }
}

fn python_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `float.__repr__`: the shortest round-trip digits, fixed notation
/// for decimal exponents in [-4, 16), else `d.ddde±XX`; integral values end in `.0`.
fn python_float(x: f64, out: &mut String) {
    if x.is_nan() {
        out.push_str("NaN");
        return;
    }
    if x.is_infinite() {
        out.push_str(if x > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    if x.is_sign_negative() {
        out.push('-');
    }
    if x == 0.0 {
        out.push_str("0.0");
        return;
    }
    // Python's repr: the shortest digit string that round-trips and, among
    // those, the closest to x with ties to even. Rust's `{:e}` gives the
    // shortest length n but may resolve an exact tie upwards (0.59073638916015625
    // -> ...563, Python ...562), so the digits are those of x correctly
    // rounded to n significant digits (ties to even), which round-trip too.
    let split = |e: &str| -> (String, i32) {
        let (mant, exp) = e.split_once('e').unwrap_or((e, "0"));
        let digits: String = mant.chars().filter(|c| *c != '.').collect();
        (digits, exp.parse().unwrap_or(0))
    };
    let (shortest, _) = split(&format!("{:e}", x.abs()));
    let (digits, exp) = split(&format!("{:.*e}", shortest.len() - 1, x.abs()));
    let digits = match digits.trim_end_matches('0') {
        "" => "0".to_string(),
        d => d.to_string(),
    };
    let decpt = exp + 1; // value = 0.d1d2... × 10^decpt
    let nd = digits.len() as i32;
    if -4 < decpt && decpt <= 16 {
        if decpt <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-decpt) as usize));
            out.push_str(&digits);
        } else if decpt >= nd {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', (decpt - nd) as usize));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..decpt as usize]);
            out.push('.');
            out.push_str(&digits[decpt as usize..]);
        }
    } else {
        out.push_str(&digits[..1]);
        if nd > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        out.push_str(&format!("e{sign}{:02}", exp.abs()));
    }
}

/// SHA-256 (FIPS 180-4), enough for digests of workspace files.
mod sha256 {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    /// The lowercase hex digest of `data`.
    pub fn hex(data: &[u8]) -> String {
        let mut h: [u32; 8] = [
            0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
            0x5be0cd19,
        ];
        let mut msg = data.to_vec();
        let bits = (data.len() as u64).wrapping_mul(8);
        msg.push(0x80);
        while msg.len() % 64 != 56 {
            msg.push(0);
        }
        msg.extend_from_slice(&bits.to_be_bytes());
        let mut w = [0u32; 64];
        for block in msg.chunks_exact(64) {
            for (i, c) in block.chunks_exact(4).enumerate() {
                w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            }
            for i in 16..64 {
                let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
                let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
                w[i] = w[i - 16]
                    .wrapping_add(s0)
                    .wrapping_add(w[i - 7])
                    .wrapping_add(s1);
            }
            let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
            for i in 0..64 {
                let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
                let ch = (e & f) ^ (!e & g);
                let t1 = hh
                    .wrapping_add(s1)
                    .wrapping_add(ch)
                    .wrapping_add(K[i])
                    .wrapping_add(w[i]);
                let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
                let maj = (a & b) ^ (a & c) ^ (b & c);
                let t2 = s0.wrapping_add(maj);
                hh = g;
                g = f;
                f = e;
                e = d.wrapping_add(t1);
                d = c;
                c = b;
                b = a;
                a = t1.wrapping_add(t2);
            }
            for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
                *x = x.wrapping_add(y);
            }
        }
        h.iter().map(|x| format!("{x:08x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sha256_vectors() {
        assert_eq!(
            sha256::hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256::hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // two blocks
        assert_eq!(
            sha256::hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    /// Expected strings and digests from Python 3 (`json.dumps(v,
    /// sort_keys=True, ensure_ascii=False)`, `hashlib.sha256`).
    #[test]
    fn python_json_dumps() {
        // pyhf's own docstring example of `pyhf.utils.digest`
        let v = json!({"b": 3.0, "a": 2.0, "c": 1.0});
        assert_eq!(
            workspace_digest(&v),
            "a38f6093800189b79bc22ef677baf90c75705af2cfc7ff594159eca54eaa7928"
        );
        let floats: Value = serde_json::from_str(
            "[1, 1.0, -0.0, 0.0001, 0.00001, 1e16, 1e15, 123.456, 1.5e-7, 2.5e+20, \
             -3, 1e2, 0.1, 12345678901234567890, 1.7976931348623157e308, 5e-324, 100.5, \
             0.59073638916015625, 0.043046317994594574]",
        )
        .unwrap();
        let mut s = String::new();
        python_dumps(&floats, &mut s);
        assert_eq!(
            s,
            "[1, 1.0, -0.0, 0.0001, 1e-05, 1e+16, 1000000000000000.0, 123.456, 1.5e-07, \
             2.5e+20, -3, 100.0, 0.1, 12345678901234567890, 1.7976931348623157e+308, 5e-324, 100.5, \
             0.5907363891601562, 0.043046317994594574]"
        );
        let strings =
            json!({"z": "a\"b\\c\nd\te\u{1}f", "é": "ünï", "A": [true, false, null, {}, []]});
        let mut s = String::new();
        python_dumps(&strings, &mut s);
        assert_eq!(
            s,
            "{\"A\": [true, false, null, {}, []], \"z\": \"a\\\"b\\\\c\\nd\\te\\u0001f\", \"é\": \"ünï\"}"
        );
        assert_eq!(
            sha256::hex(s.as_bytes()),
            "4f0988a52f936c1d79366a7242278118f26f14bbbbc838ee3dde5eb5b6e7e092"
        );
    }
}
