/// The Nef decoder can be used for NRW files, too,
/// so this is just an type alias.
pub type NrwDecoder<'a> = super::nef::NefDecoder<'a>;
