//! A deterministic bound on a contract's call stack.
//!
//! wasmtime's own stack limit counts native bytes, and how many bytes a wasm frame takes
//! depends on the compiler and the CPU. A contract that recurses to just under that limit on
//! one validator could overflow on another, and the two would disagree. So the limit that
//! decides a transaction's outcome is counted in wasm terms instead, the way production
//! chains meter their stacks:
//!
//! - every defined function gets a frame cost: [`FRAME_BASE_SLOTS`] plus its parameters and
//!   locals plus the most values it ever holds on its operand stack (found by validating its
//!   body operator by operator);
//! - a function whose frame cost is above [`FRAME_SLOTS_MAX`] is refused at upload;
//! - every `call` of a defined function is wrapped so that a module-private global, the
//!   depth, goes up by the callee's cost before the call and down after it, and the call
//!   traps when the depth would pass [`STACK_SLOTS_MAX`]; a `call_indirect` is charged the
//!   largest cost among the defined functions of its type.
//!
//! The depth global is exported as [`DEPTH_EXPORT`] so that the host can tell this trap
//! from any other. wasmtime's native stack limit stays as a backstop, set far above what
//! the slot limit lets any contract reach (see `docs/host-abi.md`).

use std::collections::HashMap;
use wasm_encoder::reencode::{Error as ReencodeError, Reencode, utils};
use wasm_encoder::{ConstExpr, ExportKind, Function, GlobalType, Instruction, SectionId, ValType};
use wasmparser::{Operator, Parser, Payload, ValidPayload, Validator, WasmFeatures};

/// What every frame costs beyond its values: return address, frame pointer, saved
/// registers and the VM context, in 8-byte slots.
pub const FRAME_BASE_SLOTS: u32 = 16;
/// The largest frame one function may have, in slots.
pub const FRAME_SLOTS_MAX: u32 = 4 * 1024;
/// The deepest a contract's stack may grow, in slots, within one call of one contract.
pub const STACK_SLOTS_MAX: u32 = 16 * 1024;
/// The export through which the host reads the depth after a trap.
pub const DEPTH_EXPORT: &str = "__shutong_stack_depth";

/// Why a module cannot be instrumented.
#[derive(Debug, thiserror::Error)]
pub enum InstrumentError {
    #[error("{0}")]
    Invalid(String),
    #[error("function {index} needs a frame of {slots} stack slots, above the maximum {max}")]
    FrameTooLarge { index: u32, slots: u32, max: u32 },
    #[error("the export name {DEPTH_EXPORT} is reserved")]
    ReservedExport,
    #[error("the module could not be re-encoded: {0}")]
    Encode(String),
}

/// What the analysis learns about a module.
struct Analysis {
    imported_funcs: u32,
    globals: u32,
    /// Frame cost by function index (defined functions only).
    frame: HashMap<u32, u32>,
    /// The largest frame cost of a defined function of each type index.
    by_type: HashMap<u32, u32>,
}

/// Validates `code` with every feature the parser knows (the engine has already refused
/// the ones that are off) and measures each function's frame.
fn analyse(code: &[u8]) -> Result<Analysis, InstrumentError> {
    let invalid = |e: wasmparser::BinaryReaderError| InstrumentError::Invalid(e.to_string());
    let mut validator = Validator::new_with_features(WasmFeatures::all());
    let mut analysis = Analysis { imported_funcs: 0, globals: 0, frame: HashMap::new(), by_type: HashMap::new() };
    let mut func_types: Vec<(u32, u32)> = Vec::new();
    let mut allocations = Default::default();
    for payload in Parser::new(0).parse_all(code) {
        let payload = payload.map_err(invalid)?;
        match &payload {
            Payload::ImportSection(imports) => {
                for import in imports.clone().into_imports() {
                    match import.map_err(invalid)?.ty {
                        wasmparser::TypeRef::Func(_) => analysis.imported_funcs += 1,
                        wasmparser::TypeRef::Global(_) => analysis.globals += 1,
                        _ => {}
                    }
                }
            }
            Payload::GlobalSection(globals) => analysis.globals += globals.count(),
            Payload::ExportSection(exports) => {
                for export in exports.clone() {
                    if export.map_err(invalid)?.name == DEPTH_EXPORT {
                        return Err(InstrumentError::ReservedExport);
                    }
                }
            }
            _ => {}
        }
        match validator.payload(&payload).map_err(invalid)? {
            ValidPayload::Func(to_validate, body) => {
                let (index, ty) = (to_validate.index, to_validate.ty);
                let mut func = to_validate.into_validator(allocations);
                let mut reader = body.get_binary_reader();
                func.read_locals(&mut reader).map_err(invalid)?;
                let mut operators = body.get_operators_reader().map_err(invalid)?;
                let mut height = 0u32;
                while !operators.eof() {
                    let (op, offset) = operators.read_with_offset().map_err(invalid)?;
                    func.op(offset, &op).map_err(invalid)?;
                    height = height.max(func.operand_stack_height());
                }
                let slots = FRAME_BASE_SLOTS.saturating_add(func.len_locals()).saturating_add(height);
                if slots > FRAME_SLOTS_MAX {
                    return Err(InstrumentError::FrameTooLarge { index, slots, max: FRAME_SLOTS_MAX });
                }
                analysis.frame.insert(index, slots);
                func_types.push((ty, slots));
                allocations = func.into_allocations();
            }
            ValidPayload::End(_) => break,
            _ => {}
        }
    }
    for (ty, slots) in func_types {
        let entry = analysis.by_type.entry(ty).or_insert(0);
        *entry = (*entry).max(slots);
    }
    Ok(analysis)
}

/// The spec's order of the non-custom sections, for placing a new global section.
fn rank(id: SectionId) -> u8 {
    match id {
        SectionId::Type => 1,
        SectionId::Import => 2,
        SectionId::Function => 3,
        SectionId::Table => 4,
        SectionId::Memory => 5,
        SectionId::Tag => 6,
        SectionId::Global => 7,
        SectionId::Export => 8,
        SectionId::Start => 9,
        SectionId::Element => 10,
        SectionId::DataCount => 11,
        SectionId::Code => 12,
        SectionId::Data => 13,
        _ => 0,
    }
}

struct Instrumenter {
    analysis: Analysis,
    depth_global: u32,
    globals_written: bool,
    exports_written: bool,
}

impl Instrumenter {
    fn depth_type() -> GlobalType {
        GlobalType { val_type: ValType::I32, mutable: true, shared: false }
    }

    /// `call`/`call_indirect` wrapped in the depth accounting for a callee of `slots`.
    fn wrapped<'a>(&self, f: &mut Function, call: &Instruction<'a>, slots: u32) {
        let depth = self.depth_global;
        let slots = slots as i32;
        f.instruction(&Instruction::GlobalGet(depth));
        f.instruction(&Instruction::I32Const(slots));
        f.instruction(&Instruction::I32Add);
        f.instruction(&Instruction::GlobalSet(depth));
        f.instruction(&Instruction::GlobalGet(depth));
        f.instruction(&Instruction::I32Const(STACK_SLOTS_MAX as i32));
        f.instruction(&Instruction::I32GtU);
        f.instruction(&Instruction::If(wasm_encoder::BlockType::Empty));
        f.instruction(&Instruction::Unreachable);
        f.instruction(&Instruction::End);
        f.instruction(call);
        f.instruction(&Instruction::GlobalGet(depth));
        f.instruction(&Instruction::I32Const(slots));
        f.instruction(&Instruction::I32Sub);
        f.instruction(&Instruction::GlobalSet(depth));
    }
}

impl Reencode for Instrumenter {
    type Error = InstrumentError;

    fn parse_global_section(
        &mut self,
        globals: &mut wasm_encoder::GlobalSection,
        section: wasmparser::GlobalSectionReader<'_>,
    ) -> Result<(), ReencodeError<Self::Error>> {
        utils::parse_global_section(self, globals, section)?;
        globals.global(Instrumenter::depth_type(), &ConstExpr::i32_const(0));
        self.globals_written = true;
        Ok(())
    }

    fn intersperse_section_hook(
        &mut self,
        module: &mut wasm_encoder::Module,
        _after: Option<SectionId>,
        before: Option<SectionId>,
    ) -> Result<(), ReencodeError<Self::Error>> {
        let past_globals = before.is_none_or(|next| rank(next) > rank(SectionId::Global));
        if !self.globals_written && past_globals {
            let mut globals = wasm_encoder::GlobalSection::new();
            globals.global(Instrumenter::depth_type(), &ConstExpr::i32_const(0));
            module.section(&globals);
            self.globals_written = true;
        }
        let past_exports = before.is_none_or(|next| rank(next) > rank(SectionId::Export));
        if !self.exports_written && past_exports {
            let mut exports = wasm_encoder::ExportSection::new();
            exports.export(DEPTH_EXPORT, ExportKind::Global, self.depth_global);
            module.section(&exports);
            self.exports_written = true;
        }
        Ok(())
    }

    fn parse_export_section(
        &mut self,
        exports: &mut wasm_encoder::ExportSection,
        section: wasmparser::ExportSectionReader<'_>,
    ) -> Result<(), ReencodeError<Self::Error>> {
        utils::parse_export_section(self, exports, section)?;
        exports.export(DEPTH_EXPORT, ExportKind::Global, self.depth_global);
        self.exports_written = true;
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        body: wasmparser::FunctionBody<'_>,
    ) -> Result<(), ReencodeError<Self::Error>> {
        let mut f = self.new_function_with_parsed_locals(&body)?;
        let mut reader = body.get_operators_reader()?;
        while !reader.eof() {
            let op = reader.read()?;
            let slots = match &op {
                Operator::Call { function_index } if *function_index >= self.analysis.imported_funcs => {
                    self.analysis.frame.get(function_index).copied()
                }
                Operator::CallIndirect { type_index, .. } => {
                    // A type no defined function has can only reach imported functions,
                    // which run on the host's stack: charge one frame anyway.
                    Some(self.analysis.by_type.get(type_index).copied().unwrap_or(FRAME_BASE_SLOTS))
                }
                _ => None,
            };
            let instruction = self.instruction(op)?;
            match slots {
                Some(slots) => self.wrapped(&mut f, &instruction, slots),
                None => {
                    f.instruction(&instruction);
                }
            }
        }
        code.function(&f);
        Ok(())
    }
}

/// Returns `code` with the stack-depth accounting added. `code` must already have passed
/// the engine's validation.
pub fn instrument(code: &[u8]) -> Result<Vec<u8>, InstrumentError> {
    let analysis = analyse(code)?;
    let depth_global = analysis.globals;
    let mut instrumenter = Instrumenter { analysis, depth_global, globals_written: false, exports_written: false };
    let mut module = wasm_encoder::Module::new();
    instrumenter.parse_core_module(&mut module, Parser::new(0), code).map_err(|e| match e {
        ReencodeError::UserError(e) => e,
        other => InstrumentError::Encode(other.to_string()),
    })?;
    Ok(module.finish())
}
