"""The runtime: takes a compiled `FlowGraph` and events (customer messages, agent actions, bot
outcomes, timers), gives effects (replies, routes, log events) applied through the ports.

`program` prepares a graph (compiled expressions, keyword automata, templates) and `steps` turns
its nodes into step functions; `interpreter.run` is pure (program, state, trigger, facts -> new
state, effects, trace: no I/O, no clock). `engine.Engine` is what hosts call: it loads and saves
conversations, runs the interpreter, and hands effects to the store, ACD, bots, data actions,
channel policy and outbound adapters, which are the `Protocol`s of `ports`. It is built with
all of them (`ports.Ports`, no defaults here: `flowlang.assembly` chooses the built-in ones) and
hands each kind of event to its module (`inbound`, `agent_actions`, `bot_outcomes`, `timers`,
`recovery`), which share an `EngineContext`; `memory` has in-memory implementations of the ports,
which the engine's modules never import.
"""
