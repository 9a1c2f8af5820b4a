"""Hook implementations of the toyseq plugin (lazy factories: no torch imported here)."""

from polyjepa import hookimpl


@hookimpl
def polyjepa_register_datasets(register):
    register("toyseq.digits", "polyjepa_toyseq.parts:DigitSequences",
             description="sklearn digits as 64-step sequences (real)")


@hookimpl
def polyjepa_register_encoders(register):
    register("toyseq.encoder", "polyjepa_toyseq.parts:ChunkEncoder")


@hookimpl
def polyjepa_register_maskers(register):
    register("toyseq.tail", "polyjepa_toyseq.parts:TailMasker")


@hookimpl
def polyjepa_register_evaluators(register):
    register("toyseq.mean_norm", "polyjepa_toyseq.parts:MeanNorm")


@hookimpl
def polyjepa_register_recipes(register):
    register("toyseq", "polyjepa_toyseq.parts:recipe")


@hookimpl
def polyjepa_register_commands(register):
    register("toyseq", "polyjepa_toyseq.parts:command",
             description="polyjepa toyseq describe: the toy data set's shape")
