// The IL type checker for one method body, in the manner of ECMA-335's verification algorithm: a data-flow pass over
// the instructions that tracks the verification type of every stack slot, local and argument, merges them where
// control flow joins, and checks every instruction's operands. It is what makes the member allowlist hold: without
// it, IL that no compiler emits could use a native integer as an address, read one type's fields through a reference
// to another, or keep a reference into a stack frame that no longer exists, all without naming a refused member.
//
// Beyond ECMA's rules it tracks read-only references (writes through `in` parameters, `ref readonly` returns and
// readonly fields are refused) and references into the method's own frame (they may not be returned or stored where
// the caller can see them, the C# compiler's ref-safety rules checked again on the IL). The compiler's own unsafe
// idioms are accepted only in their exact compiled shape: a ReadOnlySpan over a constant's RVA data of the right size,
// and the <PrivateImplementationDetails> inline-array helpers with constant in-bounds indexes.
using System.Collections.Immutable;
using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;

namespace Palisade.Kernel.Drivers.Verification;

/// <summary>Checks one method body; findings go to the sink the assembly verifier gives.</summary>
internal sealed partial class MethodVerifier
{
    private readonly ModuleResolver _resolver;
    private readonly ReferenceJudge _judge;
    private readonly CompilerIdioms _idioms;
    private readonly MethodBase _method;
    private readonly MethodBodyBlock _body;
    private readonly Action<VerifierRule, string> _report;
    private readonly GenericScope _scope;
    private readonly HashSet<string> _reported = new(StringComparer.Ordinal);
    private readonly SeenReferences _seen;

    private List<Instruction> _code = [];
    private Dictionary<int, int> _indexOf = [];
    private Type[] _slotTypes = [];
    private int _localCount;
    private State?[] _states = [];
    private readonly Stack<int> _work = new();
    private bool _abandoned;

    public MethodVerifier(ModuleResolver resolver, ReferenceJudge judge, CompilerIdioms idioms, MethodBase method, MethodBodyBlock body,
        SeenReferences seen, Action<VerifierRule, string> report)
    {
        _resolver = resolver;
        _judge = judge;
        _idioms = idioms;
        _method = method;
        _body = body;
        _seen = seen;
        _report = report;
        _scope = GenericScope.Of(method);
    }

    private VerifierUniverse Universe => _resolver.Universe;

    /// <summary>Runs the checker. Findings are reported as they are found.</summary>
    public void Verify()
    {
        try
        {
            _code = IlReader.Decode(_body.GetILContent());
        }
        catch (BadImageFormatException e)
        {
            Fail(VerifierRules.TypeSafety, "the method body: " + e.Message);
            return;
        }

        if (_code.Count == 0)
        {
            Fail(VerifierRules.TypeSafety, "an empty method body");
            return;
        }

        _indexOf = new Dictionary<int, int>(_code.Count);
        for (int i = 0; i < _code.Count; i++)
        {
            _indexOf[_code[i].Offset] = i;
        }

        if (!PrepareSlots())
        {
            return;
        }

        _states = new State?[_code.Count];
        var entry = new State([], new ValueFlags[_slotTypes.Length]);
        for (int a = _localCount; a < _slotTypes.Length; a++)
        {
            entry.Slots[a] = ArgumentFlags(a - _localCount);
        }

        Merge(0, entry);
        while (_work.Count > 0 && !_abandoned)
        {
            int index = _work.Pop();
            Step(index, _states[index]!.Copy());
        }
    }

    // Locals first, then arguments ('this' first among them), in one slot array.
    private bool PrepareSlots()
    {
        var slots = new List<Type>();
        if (!_body.LocalSignature.IsNil)
        {
            StandaloneSignature signature = _resolver.Reader.GetStandaloneSignature(_body.LocalSignature);
            SignatureFlags flags = SignatureFlagsProvider.Of(signature.DecodeLocalSignature(new SignatureFlagsProvider(_resolver.Reader), null));
            ReportSignature(flags, "a local variable");
            if ((flags & (SignatureFlags.Pointer | SignatureFlags.FunctionPointer | SignatureFlags.Pinned | SignatureFlags.TypedReference)) != 0)
            {
                return false;
            }

            try
            {
                foreach (Type local in signature.DecodeLocalSignature(_resolver, _scope))
                {
                    slots.Add(local);
                    if (_judge.JudgeType(local) is { } refused)
                    {
                        Fail(refused.Rule, refused.What + " (a local variable)");
                    }
                }
            }
            catch (UnresolvedReferenceException e)
            {
                Fail(VerifierRules.Unresolved, e.Message);
                return false;
            }

            if (slots.Count > 0 && !_body.LocalVariablesInitialized)
            {
                Fail(VerifierRules.UninitializedLocals, "locals not zero-initialized (no localsinit)");
            }
        }

        _localCount = slots.Count;
        if (!_method.IsStatic)
        {
            Type declaring = _method.DeclaringType!;
            slots.Add(declaring.IsValueType ? declaring.MakeByRefType() : declaring);
        }

        foreach (ParameterInfo parameter in _method.GetParameters())
        {
            slots.Add(parameter.ParameterType);
        }

        _slotTypes = [.. slots];
        return true;
    }

    // What an argument holds on entry. A scoped reference (a struct's 'this' without [UnscopedRef], a 'scoped' or
    // 'out' parameter) may point into the caller's frame in ways the caller did not allow to escape: for this method
    // it is as if it pointed into its own frame, so it may not be returned or stored where the caller sees it.
    private ValueFlags ArgumentFlags(int argument)
    {
        int parameterIndex = _method.IsStatic ? argument : argument - 1;
        if (parameterIndex < 0)
        {
            return _method.DeclaringType is { IsValueType: true } && !TypeFacts.HasUnscopedThis(_method) ? ValueFlags.MayReferToFrame : ValueFlags.None;
        }

        ParameterInfo parameter = _method.GetParameters()[parameterIndex];
        ValueFlags flags = TypeFacts.IsReadOnlyParameter(parameter) ? ValueFlags.ReadOnly : ValueFlags.None;
        if (TypeFacts.IsScoped(parameter) && (parameter.ParameterType.IsByRef || TypeFacts.CarriesReferences(parameter.ParameterType)))
        {
            flags |= ValueFlags.MayReferToFrame;
        }

        return flags;
    }

    private void ReportSignature(SignatureFlags flags, string what)
    {
        if ((flags & SignatureFlags.Pointer) != 0)
        {
            Fail(VerifierRules.Pointers, "a pointer type in " + what);
        }

        if ((flags & SignatureFlags.FunctionPointer) != 0)
        {
            Fail(VerifierRules.FunctionPointers, "a function pointer type in " + what);
        }

        if ((flags & SignatureFlags.Pinned) != 0)
        {
            Fail(VerifierRules.Pointers, "a pinned local (fixed)");
        }

        if ((flags & SignatureFlags.TypedReference) != 0)
        {
            Fail(VerifierRules.UncheckedIl, "System.TypedReference in " + what);
        }
    }

    private void Fail(VerifierRule rule, string what)
    {
        if (_reported.Add(rule.Id + what))
        {
            _report(rule, what);
        }
    }

    private void Fail(VerifierRule rule, Instruction at, string problem) =>
        Fail(rule, $"{Instruction.OpCodeName(at.OpCode)} at IL_{at.Offset:X4}: {problem}");

    private void Abandon(Instruction at, string problem)
    {
        Fail(VerifierRules.TypeSafety, at, problem);
        _abandoned = true;
    }

    private void Merge(int index, State incoming)
    {
        State? existing = _states[index];
        if (existing is null)
        {
            _states[index] = incoming;
            _work.Push(index);
            return;
        }

        if (existing.Stack.Length != incoming.Stack.Length)
        {
            Abandon(_code[index], $"the stack holds {existing.Stack.Length} values on one path here and {incoming.Stack.Length} on another");
            return;
        }

        bool changed = false;
        for (int i = 0; i < existing.Stack.Length; i++)
        {
            StackValue? merged = MergeValues(existing.Stack[i], incoming.Stack[i]);
            if (merged is null)
            {
                Abandon(_code[index], $"stack slot {i} is {existing.Stack[i]} on one path here and {incoming.Stack[i]} on another");
                return;
            }

            if (merged.Value != existing.Stack[i])
            {
                existing.Stack[i] = merged.Value;
                changed = true;
            }
        }

        for (int i = 0; i < existing.Slots.Length; i++)
        {
            ValueFlags merged = MergeFlags(existing.Slots[i], incoming.Slots[i]);
            if (merged != existing.Slots[i])
            {
                existing.Slots[i] = merged;
                changed = true;
            }
        }

        if (changed)
        {
            _work.Push(index);
        }
    }

    private static ValueFlags MergeFlags(ValueFlags a, ValueFlags b)
    {
        const ValueFlags any = ValueFlags.ReadOnly | ValueFlags.MayReferToFrame | ValueFlags.PointeeMayReferToFrame;
        const ValueFlags all = ValueFlags.InFrame | ValueFlags.Fresh | ValueFlags.RvaStatic | ValueFlags.Constant;
        return ((a | b) & any) | (a & b & all);
    }

    private StackValue? MergeValues(StackValue a, StackValue b)
    {
        if (a == b)
        {
            return a;
        }

        ValueFlags flags = MergeFlags(a.Flags, b.Flags);
        if (a.Has(ValueFlags.Constant) && b.Has(ValueFlags.Constant) && a.Constant != b.Constant)
        {
            flags &= ~ValueFlags.Constant;
        }

        int slot = a.Slot == b.Slot ? a.Slot : -1;
        if (slot < 0)
        {
            flags &= ~ValueFlags.InFrame;
        }

        switch (a.Kind, b.Kind)
        {
            case (ValueKind.Null, ValueKind.Null):
                return a;
            case (ValueKind.Null, ValueKind.Object):
                return b;
            case (ValueKind.Object, ValueKind.Null):
                return a;
            case (ValueKind.Object, ValueKind.Object):
                return MergeObjects(a, b) with { Flags = flags & ~ValueFlags.Fresh };
        }

        if (a.Kind != b.Kind)
        {
            return null;
        }

        switch (a.Kind)
        {
            case ValueKind.Int32 or ValueKind.Int64 or ValueKind.NativeInt or ValueKind.Float:
                return a with { Flags = flags, Constant = a.Has(ValueFlags.Constant) && (flags & ValueFlags.Constant) != 0 ? a.Constant : 0 };
            case ValueKind.ByRef:
                if (!TypeFacts.SameStorage(a.Type!, b.Type!))
                {
                    return null;
                }

                return a with { Flags = flags, Slot = slot, Field = a.Field == b.Field ? a.Field : null };
            case ValueKind.Value:
                return a.Type!.Equals(b.Type) ? a with { Flags = flags } : null;
            default:
                return a.Method == b.Method ? a : null;
        }
    }

    // Two object types meet in the set of both, so that what holds for every possible type can still be checked.
    private StackValue MergeObjects(StackValue a, StackValue b)
    {
        var types = new List<Type>(a.ObjectTypes());
        foreach (Type t in b.ObjectTypes())
        {
            if (!types.Contains(t))
            {
                types.Add(t);
            }
        }

        if (types.Count > 8)
        {
            return new StackValue(ValueKind.Object, Universe.Core("System.Object"));
        }

        return new StackValue(ValueKind.Object, types[0]) { Alternatives = types.Count > 1 ? [.. types.Skip(1)] : null };
    }

    private sealed class State(StackValue[] stack, ValueFlags[] slots)
    {
        public StackValue[] Stack { get; } = stack;

        public ValueFlags[] Slots { get; } = slots;

        public State Copy() => new((StackValue[])Stack.Clone(), (ValueFlags[])Slots.Clone());
    }

    // One instruction (with its prefixes) from a known state; successors get the resulting state.
    private void Step(int index, State state)
    {
        Instruction at = _code[index];
        MergeIntoHandlers(at, state);
        var stack = new List<StackValue>(state.Stack);
        var frame = new Frame(this, stack, state.Slots, at);
        Type? constrained = null;
        bool readOnlyPrefix = false;
        while (at.OpCode is ILOpCode.Constrained or ILOpCode.Readonly or ILOpCode.Volatile)
        {
            if (at.OpCode == ILOpCode.Constrained)
            {
                constrained = frame.TypeOperand(at);
                if (constrained is null)
                {
                    return;
                }
            }

            readOnlyPrefix |= at.OpCode == ILOpCode.Readonly;
            if (index + 1 >= _code.Count)
            {
                Abandon(at, "a prefix at the end of the body");
                return;
            }

            at = _code[++index];
            frame.At = at;
        }

        if (!frame.Execute(constrained, readOnlyPrefix) || _abandoned)
        {
            return;
        }

        var next = new State([.. stack], state.Slots);
        switch (at.OpCode)
        {
            case ILOpCode.Ret or ILOpCode.Throw or ILOpCode.Rethrow or ILOpCode.Endfinally or ILOpCode.Endfilter or ILOpCode.Jmp:
                return;
            case ILOpCode.Br or ILOpCode.Br_s or ILOpCode.Leave or ILOpCode.Leave_s:
                Branch(at, (int)at.Operand, at.OpCode is ILOpCode.Leave or ILOpCode.Leave_s ? new State([], state.Slots) : next);
                return;
            case ILOpCode.Switch:
                foreach (int target in at.Targets!)
                {
                    Branch(at, target, next.Copy());
                }

                break;
            default:
                if (at.OpCode.IsBranch())
                {
                    Branch(at, (int)at.Operand, next.Copy());
                }

                break;
        }

        if (index + 1 >= _code.Count)
        {
            Abandon(at, "control falls off the end of the method");
            return;
        }

        Merge(index + 1, next);
    }

    private void Branch(Instruction at, int target, State state)
    {
        if (!_indexOf.TryGetValue(target, out int index))
        {
            Abandon(at, $"a branch to IL_{target:X4}, which is not the start of an instruction");
            return;
        }

        Merge(index, state);
    }

    private void MergeIntoHandlers(Instruction at, State state)
    {
        foreach (ExceptionRegion region in _body.ExceptionRegions)
        {
            if (at.Offset < region.TryOffset || at.Offset >= region.TryOffset + region.TryLength)
            {
                continue;
            }

            StackValue[] handlerStack;
            switch (region.Kind)
            {
                case ExceptionRegionKind.Catch:
                    Type caught;
                    try
                    {
                        caught = _resolver.ResolveType(region.CatchType, _scope);
                    }
                    catch (UnresolvedReferenceException e)
                    {
                        Fail(VerifierRules.Unresolved, e.Message);
                        _abandoned = true;
                        return;
                    }

                    JudgeUse(caught, region.CatchType, " (a catch clause)");
                    handlerStack = [new StackValue(ValueKind.Object, caught)];
                    break;
                case ExceptionRegionKind.Filter:
                    handlerStack = [new StackValue(ValueKind.Object, Universe.Core("System.Object"))];
                    Branch(at, region.FilterOffset, new State(handlerStack, (ValueFlags[])state.Slots.Clone()));
                    break;
                default:
                    handlerStack = [];
                    break;
            }

            Branch(at, region.HandlerOffset, new State(handlerStack, (ValueFlags[])state.Slots.Clone()));
        }
    }

    private void JudgeUse(Type type, EntityHandle handle, string context = "")
    {
        _seen.Add(handle);
        if (_judge.JudgeType(type) is { } refused)
        {
            Fail(refused.Rule, refused.What + context);
        }
    }

    private void JudgeUse(MemberInfo member, EntityHandle handle)
    {
        _seen.Add(handle);
        if (_judge.JudgeMember(member) is { } refused)
        {
            Fail(refused.Rule, refused.What);
        }
    }
}
