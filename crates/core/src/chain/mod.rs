//! The chain: validation of blocks and the block tree with fork choice.

pub mod bodies;
mod entries;
mod recent;
pub mod tree;
pub mod txindex;
pub mod validation;

pub use tree::{BlockEntry, BlockTree, InsertError, TipChange};
pub use validation::{
    CheckedBlock, HashedBlock, ParentInfo, ValidationError, check_proof_of_work, check_standalone,
    check_standalone_hashed, validate_block, validate_hashed_block, validate_hashed_in_chain, validate_in_chain,
    validate_in_chain_with,
};
