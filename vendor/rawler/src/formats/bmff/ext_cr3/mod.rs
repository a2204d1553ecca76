// SPDX-License-Identifier: MIT
// Copyright 2021 Daniel Vogelbacher <daniel@chaospixel.com>

pub mod ccdt;
pub mod cctp;
pub mod cdi1;
pub mod cmp1;
pub mod cmt1;
pub mod cmt2;
pub mod cmt3;
pub mod cmt4;
pub mod cncv;
pub mod cnop;
pub mod cr3desc; // TODO rename to cr3box
pub mod cr3xpacket;
pub mod craw;
pub mod ctbo;
pub mod ctmd;
pub mod hevc;
pub mod iad1;
pub mod jpeg;
pub mod thmb;
