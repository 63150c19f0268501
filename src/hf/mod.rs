//! HistFactory: pyhf JSON workspaces (`spec`), the compiled model (`model`),
//! modifiers and interpolation codes.
