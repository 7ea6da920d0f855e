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
internal sealed class MethodVerifier
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

    /// <summary>The instruction semantics, over one state's stack and slots.</summary>
    private sealed class Frame(MethodVerifier owner, List<StackValue> stack, ValueFlags[] slots, Instruction at)
    {
        public Instruction At { get; set; } = at;

        private VerifierUniverse Universe => owner.Universe;

        private void Fail(VerifierRule rule, string problem) => owner.Fail(rule, At, problem);

        private bool Abandon(string problem)
        {
            owner.Abandon(At, problem);
            return false;
        }

        // After a finding that makes the rest of the method meaningless to check (calli, localloc...).
        private bool Stop()
        {
            owner._abandoned = true;
            return false;
        }

        private bool Pop(out StackValue value)
        {
            if (stack.Count == 0)
            {
                value = default;
                return Abandon("the stack is empty");
            }

            value = stack[^1];
            stack.RemoveAt(stack.Count - 1);
            return true;
        }

        private bool Pop(int count, out StackValue[] values)
        {
            values = new StackValue[count];
            if (stack.Count < count)
            {
                return Abandon($"the stack holds {stack.Count} values, {count} are needed");
            }

            for (int i = count - 1; i >= 0; i--)
            {
                values[i] = stack[^1];
                stack.RemoveAt(stack.Count - 1);
            }

            return true;
        }

        private void Push(StackValue value) => stack.Add(value);

        public Type? TypeOperand(Instruction instruction)
        {
            EntityHandle handle = MetadataTokens.EntityHandle(instruction.Token);
            try
            {
                Type type = owner._resolver.ResolveType(handle, owner._scope);
                owner.JudgeUse(type, handle);
                return type;
            }
            catch (UnresolvedReferenceException e)
            {
                owner.Fail(VerifierRules.Unresolved, e.Message);
                owner._abandoned = true;
                return null;
            }
        }

        private MemberInfo? MemberOperand(bool judge = true)
        {
            EntityHandle handle = MetadataTokens.EntityHandle(At.Token);
            try
            {
                MemberInfo member = owner._resolver.ResolveMember(handle, owner._scope);
                if (judge)
                {
                    owner.JudgeUse(member, handle);
                }
                else
                {
                    owner._seen.Add(handle);
                }

                return member;
            }
            catch (UnresolvedReferenceException e)
            {
                owner.Fail(VerifierRules.Unresolved, e.Message);
                owner._abandoned = true;
                return null;
            }
        }

        // Reports why a value cannot go where a type is expected; true when it can.
        private bool Expect(StackValue value, Type slot, string where)
        {
            if (value.Kind == ValueKind.MethodPointer)
            {
                Fail(VerifierRules.MethodPointer, $"a method pointer used as {where}");
                return false;
            }

            if (TypeFacts.CanStore(value, slot))
            {
                return true;
            }

            if (value.Kind is ValueKind.ByRef or ValueKind.Object && TypeFacts.StorageOf(slot) is Storage.NativeInt or Storage.Int32 or Storage.Int64)
            {
                Fail(VerifierRules.Pointers, $"{value} used as an integer ({where})");
            }
            else if (value.Kind is ValueKind.NativeInt or ValueKind.Int32 or ValueKind.Int64 && (slot.IsByRef || TypeFacts.StorageOf(slot) == Storage.Reference))
            {
                Fail(VerifierRules.Pointers, $"an integer used as {ReferenceJudge.NameOf(slot)} ({where})");
            }
            else
            {
                Fail(VerifierRules.TypeSafety, $"{value} where {ReferenceJudge.NameOf(slot)} is expected ({where})");
            }

            return false;
        }

        private bool Address(StackValue value, string what)
        {
            if (value.Kind == ValueKind.ByRef)
            {
                return true;
            }

            Fail(value.Kind is ValueKind.NativeInt or ValueKind.Int32 or ValueKind.Int64 ? VerifierRules.Pointers : VerifierRules.TypeSafety,
                $"{what} through {value}, which is not a managed reference");
            return false;
        }

        private void Writable(StackValue address, string what)
        {
            if (address.Has(ValueFlags.ReadOnly))
            {
                Fail(VerifierRules.ReadOnlyWrite, $"{what} through a read-only reference to {ReferenceJudge.NameOf(address.Type!)}");
            }
        }

        // A value that may refer into this frame goes somewhere: into a slot of this frame (the slot then may refer to
        // the frame too), or anywhere else, which is an escape.
        private void Store(StackValue value, Type type, StackValue destination)
        {
            if (!value.Has(ValueFlags.MayReferToFrame) || !TypeFacts.CarriesReferences(type))
            {
                return;
            }

            if (destination.Kind == ValueKind.ByRef && destination.Has(ValueFlags.InFrame) && destination.Slot >= 0)
            {
                slots[destination.Slot] |= ValueFlags.MayReferToFrame;
                return;
            }

            Fail(VerifierRules.StackEscape, $"a reference into this method's frame stored where it outlives the frame");
        }

        public bool Execute(Type? constrained, bool readOnlyPrefix)
        {
            ILOpCode op = At.OpCode;
            switch (op)
            {
                case ILOpCode.Nop:
                    return true;
                case ILOpCode.Ldarg_0 or ILOpCode.Ldarg_1 or ILOpCode.Ldarg_2 or ILOpCode.Ldarg_3:
                    return LoadSlot(owner._localCount + (op - ILOpCode.Ldarg_0));
                case ILOpCode.Ldarg_s or ILOpCode.Ldarg:
                    return LoadSlot(owner._localCount + (int)At.Operand);
                case ILOpCode.Ldloc_0 or ILOpCode.Ldloc_1 or ILOpCode.Ldloc_2 or ILOpCode.Ldloc_3:
                    return LoadSlot(op - ILOpCode.Ldloc_0, local: true);
                case ILOpCode.Ldloc_s or ILOpCode.Ldloc:
                    return LoadSlot((int)At.Operand, local: true);
                case ILOpCode.Stloc_0 or ILOpCode.Stloc_1 or ILOpCode.Stloc_2 or ILOpCode.Stloc_3:
                    return StoreSlot(op - ILOpCode.Stloc_0, local: true);
                case ILOpCode.Stloc_s or ILOpCode.Stloc:
                    return StoreSlot((int)At.Operand, local: true);
                case ILOpCode.Starg_s or ILOpCode.Starg:
                    if (!owner._method.IsStatic && At.Operand == 0)
                    {
                        Fail(VerifierRules.TypeSafety, "storing into 'this'");
                    }

                    return StoreSlot(owner._localCount + (int)At.Operand);
                case ILOpCode.Ldloca_s or ILOpCode.Ldloca:
                    return AddressOfSlot((int)At.Operand, local: true);
                case ILOpCode.Ldarga_s or ILOpCode.Ldarga:
                    return AddressOfSlot(owner._localCount + (int)At.Operand);
                case ILOpCode.Ldnull:
                    Push(StackValue.Null());
                    return true;
                case >= ILOpCode.Ldc_i4_m1 and <= ILOpCode.Ldc_i4_8:
                    Push(StackValue.ConstantInt32(op - ILOpCode.Ldc_i4_0));
                    return true;
                case ILOpCode.Ldc_i4_s or ILOpCode.Ldc_i4:
                    Push(StackValue.ConstantInt32((int)At.Operand));
                    return true;
                case ILOpCode.Ldc_i8:
                    Push(new StackValue(ValueKind.Int64, null));
                    return true;
                case ILOpCode.Ldc_r4 or ILOpCode.Ldc_r8:
                    Push(new StackValue(ValueKind.Float, null));
                    return true;
                case ILOpCode.Ldstr:
                    Push(new StackValue(ValueKind.Object, Universe.Core("System.String")));
                    return true;
                case ILOpCode.Dup:
                    if (!Pop(out StackValue top))
                    {
                        return false;
                    }

                    Push(top);
                    Push(top);
                    return true;
                case ILOpCode.Pop:
                    return Pop(out _);
                case ILOpCode.Ret:
                    return Return();
                case ILOpCode.Call or ILOpCode.Callvirt or ILOpCode.Newobj:
                    return Call(op, constrained);
                case ILOpCode.Ldftn:
                    return LoadFunction(isVirtual: false);
                case ILOpCode.Ldvirtftn:
                    return LoadFunction(isVirtual: true);
                case ILOpCode.Br or ILOpCode.Br_s or ILOpCode.Leave or ILOpCode.Leave_s:
                    return true;
                case ILOpCode.Brtrue or ILOpCode.Brtrue_s or ILOpCode.Brfalse or ILOpCode.Brfalse_s:
                    if (!Pop(out StackValue condition))
                    {
                        return false;
                    }

                    if (condition.Kind is ValueKind.Float or ValueKind.Value or ValueKind.MethodPointer)
                    {
                        Fail(VerifierRules.TypeSafety, $"a branch on {condition}");
                    }

                    return true;
                case ILOpCode.Beq or ILOpCode.Beq_s or ILOpCode.Bne_un or ILOpCode.Bne_un_s or ILOpCode.Bge or ILOpCode.Bge_s
                    or ILOpCode.Bge_un or ILOpCode.Bge_un_s or ILOpCode.Bgt or ILOpCode.Bgt_s or ILOpCode.Bgt_un or ILOpCode.Bgt_un_s
                    or ILOpCode.Ble or ILOpCode.Ble_s or ILOpCode.Ble_un or ILOpCode.Ble_un_s or ILOpCode.Blt or ILOpCode.Blt_s
                    or ILOpCode.Blt_un or ILOpCode.Blt_un_s:
                    return Compare(pushResult: false);
                case ILOpCode.Ceq or ILOpCode.Cgt or ILOpCode.Cgt_un or ILOpCode.Clt or ILOpCode.Clt_un:
                    return Compare(pushResult: true);
                case ILOpCode.Switch:
                    return PopInteger("a switch");
                case >= ILOpCode.Ldind_i1 and <= ILOpCode.Ldind_ref:
                    return LoadIndirect(op);
                case ILOpCode.Stind_ref or (>= ILOpCode.Stind_i1 and <= ILOpCode.Stind_r8) or ILOpCode.Stind_i:
                    return StoreIndirect(op);
                case ILOpCode.Add or ILOpCode.Sub or ILOpCode.Mul or ILOpCode.Div or ILOpCode.Div_un or ILOpCode.Rem or ILOpCode.Rem_un
                    or ILOpCode.And or ILOpCode.Or or ILOpCode.Xor or ILOpCode.Add_ovf or ILOpCode.Add_ovf_un or ILOpCode.Mul_ovf
                    or ILOpCode.Mul_ovf_un or ILOpCode.Sub_ovf or ILOpCode.Sub_ovf_un:
                    return Arithmetic(op);
                case ILOpCode.Shl or ILOpCode.Shr or ILOpCode.Shr_un:
                    return Shift();
                case ILOpCode.Neg or ILOpCode.Not:
                    return Unary(op);
                case ILOpCode.Ckfinite:
                    return Unary(op);
                case >= ILOpCode.Conv_i1 and <= ILOpCode.Conv_u8:
                case >= ILOpCode.Conv_ovf_i1_un and <= ILOpCode.Conv_ovf_u_un:
                case >= ILOpCode.Conv_ovf_i1 and <= ILOpCode.Conv_ovf_u8:
                case ILOpCode.Conv_r_un or ILOpCode.Conv_u2 or ILOpCode.Conv_u1 or ILOpCode.Conv_i or ILOpCode.Conv_ovf_i
                    or ILOpCode.Conv_ovf_u or ILOpCode.Conv_u:
                    return Convert(op);
                case ILOpCode.Ldobj:
                    return LoadObject();
                case ILOpCode.Stobj:
                    return StoreObject();
                case ILOpCode.Initobj:
                    return InitObject();
                case ILOpCode.Castclass or ILOpCode.Isinst:
                    return Cast();
                case ILOpCode.Box:
                    return Box();
                case ILOpCode.Unbox or ILOpCode.Unbox_any:
                    return Unbox(op == ILOpCode.Unbox_any);
                case ILOpCode.Throw:
                    if (!Pop(out StackValue thrown))
                    {
                        return false;
                    }

                    if (thrown.Kind is not (ValueKind.Object or ValueKind.Null))
                    {
                        Fail(VerifierRules.TypeSafety, $"throwing {thrown}");
                    }

                    return true;
                case ILOpCode.Rethrow or ILOpCode.Endfinally:
                    return true;
                case ILOpCode.Endfilter:
                    return PopInteger("the end of a filter");
                case ILOpCode.Ldfld or ILOpCode.Ldflda or ILOpCode.Stfld:
                    return InstanceField(op);
                case ILOpCode.Ldsfld or ILOpCode.Ldsflda or ILOpCode.Stsfld:
                    return StaticField(op);
                case ILOpCode.Newarr:
                    return NewArray();
                case ILOpCode.Ldlen:
                    if (!Pop(out StackValue array))
                    {
                        return false;
                    }

                    if (array.Kind != ValueKind.Null && ElementOf(array) is null)
                    {
                        Fail(VerifierRules.TypeSafety, $"the length of {array}, which is not an array");
                    }

                    Push(new StackValue(ValueKind.NativeInt, null));
                    return true;
                case ILOpCode.Ldelema:
                    return LoadElementAddress(readOnlyPrefix);
                case >= ILOpCode.Ldelem_i1 and <= ILOpCode.Ldelem_ref:
                case ILOpCode.Ldelem:
                    return LoadElement(op);
                case >= ILOpCode.Stelem_i and <= ILOpCode.Stelem_ref:
                case ILOpCode.Stelem:
                    return StoreElement(op);
                case ILOpCode.Ldtoken:
                    return LoadToken();
                case ILOpCode.Sizeof:
                    if (TypeOperand(At) is null)
                    {
                        return false;
                    }

                    Push(StackValue.Int32());
                    return true;
                case ILOpCode.Calli:
                    Fail(VerifierRules.FunctionPointers, "calli calls a code address");
                    return Stop();
                case ILOpCode.Localloc:
                    Fail(VerifierRules.StackAlloc, "localloc (stackalloc)");
                    return Stop();
                case ILOpCode.Cpblk or ILOpCode.Initblk:
                    Fail(VerifierRules.Pointers, "copies or fills raw memory");
                    return Stop();
                case ILOpCode.Tail:
                    Fail(VerifierRules.UncheckedIl, "a tail. prefix");
                    return Stop();
                case ILOpCode.Unaligned:
                    Fail(VerifierRules.UncheckedIl, "an unaligned. prefix");
                    return Stop();
                case ILOpCode.Jmp:
                    Fail(VerifierRules.UncheckedIl, "jmp transfers the arguments to another method");
                    return Stop();
                case ILOpCode.Break:
                    Fail(VerifierRules.UncheckedIl, "break raises a debugger trap in the kernel process");
                    return true;
                case ILOpCode.Arglist or ILOpCode.Mkrefany or ILOpCode.Refanyval or ILOpCode.Refanytype:
                    Fail(VerifierRules.UncheckedIl, "varargs and TypedReference");
                    return Stop();
                case ILOpCode.Cpobj:
                    Fail(VerifierRules.UncheckedIl, "cpobj, which the C# compiler never emits");
                    return Stop();
                default:
                    Fail(VerifierRules.UncheckedIl, "an instruction the verifier does not accept");
                    return Stop();
            }
        }

        private bool PopInteger(string what)
        {
            if (!Pop(out StackValue value))
            {
                return false;
            }

            if (value.Kind is not (ValueKind.Int32 or ValueKind.NativeInt))
            {
                Fail(VerifierRules.TypeSafety, $"{value} as {what}");
            }

            return true;
        }

        private bool LoadSlot(int slot, bool local = false)
        {
            if (!SlotExists(slot, local))
            {
                return false;
            }

            Type type = owner._slotTypes[slot];
            StackValue value = TypeFacts.ValueOf(type);
            ValueFlags stored = slots[slot];
            if (type.IsByRef)
            {
                value = value with { Flags = stored & (ValueFlags.ReadOnly | ValueFlags.MayReferToFrame | ValueFlags.PointeeMayReferToFrame) };
            }
            else if (TypeFacts.CarriesReferences(type))
            {
                value = value with { Flags = stored & ValueFlags.MayReferToFrame };
            }
            else if (value.Kind == ValueKind.Object)
            {
                // An object initializer may keep the new object in a local between its init accessors.
                value = value with { Flags = stored & ValueFlags.Fresh };
            }

            Push(value);
            return true;
        }

        private bool SlotExists(int slot, bool local)
        {
            bool exists = local ? slot < owner._localCount : slot < owner._slotTypes.Length && slot >= owner._localCount;
            return exists || Abandon($"{(local ? "local" : "argument")} {slot - (local ? 0 : owner._localCount)} does not exist");
        }

        private bool StoreSlot(int slot, bool local = false)
        {
            if (!SlotExists(slot, local) || !Pop(out StackValue value))
            {
                return false;
            }

            Type type = owner._slotTypes[slot];
            Expect(value, type, local ? $"local {slot}" : $"argument {slot - owner._localCount}");
            if (type.IsByRef)
            {
                slots[slot] = value.Flags & (ValueFlags.ReadOnly | ValueFlags.MayReferToFrame | ValueFlags.PointeeMayReferToFrame);
            }
            else if (TypeFacts.CarriesReferences(type))
            {
                slots[slot] = value.Flags & ValueFlags.MayReferToFrame;
            }
            else
            {
                slots[slot] = value.Flags & ValueFlags.Fresh;
            }

            return true;
        }

        private bool AddressOfSlot(int slot, bool local = false)
        {
            if (!SlotExists(slot, local))
            {
                return false;
            }

            Type type = owner._slotTypes[slot];
            if (type.IsByRef)
            {
                Fail(VerifierRules.TypeSafety, "the address of a reference variable");
                return Stop();
            }

            ValueFlags flags = ValueFlags.InFrame | ValueFlags.MayReferToFrame;
            if ((slots[slot] & ValueFlags.MayReferToFrame) != 0)
            {
                flags |= ValueFlags.PointeeMayReferToFrame;
            }

            Push(new StackValue(ValueKind.ByRef, type, flags) { Slot = slot });
            return true;
        }

        private bool Return()
        {
            Type returnType = owner._method is MethodInfo method ? method.ReturnType : Universe.Core("System.Void");
            if (returnType.FullName == "System.Void")
            {
                return stack.Count == 0 || Abandon($"ret leaves {stack.Count} values on the stack");
            }

            if (!Pop(out StackValue value))
            {
                return false;
            }

            Expect(value, returnType, "the return value");
            if (returnType.IsByRef && value.Has(ValueFlags.ReadOnly) && !TypeFacts.ReturnsReadOnly((MethodInfo)owner._method))
            {
                Fail(VerifierRules.ReadOnlyWrite, "a read-only reference returned as a writable one");
            }

            if (value.Has(ValueFlags.MayReferToFrame) && TypeFacts.CarriesReferences(returnType))
            {
                Fail(VerifierRules.StackEscape, "returns a reference into this method's own frame");
            }

            return stack.Count == 0 || Abandon($"ret leaves {stack.Count} values on the stack");
        }

        private bool Compare(bool pushResult)
        {
            if (!Pop(out StackValue right) || !Pop(out StackValue left))
            {
                return false;
            }

            bool numbers = (left.Kind, right.Kind) switch
            {
                (ValueKind.Int32 or ValueKind.NativeInt, ValueKind.Int32 or ValueKind.NativeInt) => true,
                (ValueKind.Int64, ValueKind.Int64) => true,
                (ValueKind.Float, ValueKind.Float) => true,
                (ValueKind.Object or ValueKind.Null, ValueKind.Object or ValueKind.Null) => true,
                (ValueKind.ByRef, ValueKind.ByRef) => true,
                _ => false,
            };
            if (!numbers)
            {
                Fail(VerifierRules.TypeSafety, $"compares {left} with {right}");
            }

            if (pushResult)
            {
                Push(StackValue.Int32());
            }

            return true;
        }

        private bool Arithmetic(ILOpCode op)
        {
            if (!Pop(out StackValue right) || !Pop(out StackValue left))
            {
                return false;
            }

            if (left.Kind == ValueKind.ByRef || right.Kind == ValueKind.ByRef)
            {
                Fail(VerifierRules.Pointers, "arithmetic on a managed reference (reads or writes outside the object)");
                Push(new StackValue(ValueKind.NativeInt, null));
                return true;
            }

            bool integerOnly = op is ILOpCode.And or ILOpCode.Or or ILOpCode.Xor or ILOpCode.Div_un or ILOpCode.Rem_un
                or ILOpCode.Add_ovf or ILOpCode.Add_ovf_un or ILOpCode.Mul_ovf or ILOpCode.Mul_ovf_un or ILOpCode.Sub_ovf or ILOpCode.Sub_ovf_un;
            ValueKind? result = (left.Kind, right.Kind) switch
            {
                (ValueKind.Int32, ValueKind.Int32) => ValueKind.Int32,
                (ValueKind.Int32 or ValueKind.NativeInt, ValueKind.Int32 or ValueKind.NativeInt) => ValueKind.NativeInt,
                (ValueKind.Int64, ValueKind.Int64) => ValueKind.Int64,
                (ValueKind.Float, ValueKind.Float) when !integerOnly => ValueKind.Float,
                _ => null,
            };
            if (result is null)
            {
                Fail(VerifierRules.TypeSafety, $"arithmetic on {left} and {right}");
                result = ValueKind.NativeInt;
            }

            Push(new StackValue(result.Value, null));
            return true;
        }

        private bool Shift()
        {
            if (!Pop(out StackValue amount) || !Pop(out StackValue value))
            {
                return false;
            }

            if (amount.Kind is not (ValueKind.Int32 or ValueKind.NativeInt) || value.Kind is not (ValueKind.Int32 or ValueKind.Int64 or ValueKind.NativeInt))
            {
                Fail(VerifierRules.TypeSafety, $"shifts {value} by {amount}");
            }

            Push(new StackValue(value.Kind is ValueKind.Int32 or ValueKind.Int64 or ValueKind.NativeInt ? value.Kind : ValueKind.Int32, null));
            return true;
        }

        private bool Unary(ILOpCode op)
        {
            if (!Pop(out StackValue value))
            {
                return false;
            }

            bool valid = op switch
            {
                ILOpCode.Neg => value.Kind is ValueKind.Int32 or ValueKind.Int64 or ValueKind.NativeInt or ValueKind.Float,
                ILOpCode.Not => value.Kind is ValueKind.Int32 or ValueKind.Int64 or ValueKind.NativeInt,
                _ => value.Kind == ValueKind.Float,
            };
            if (!valid)
            {
                Fail(VerifierRules.TypeSafety, $"{Instruction.OpCodeName(op)} of {value}");
                value = StackValue.Int32();
            }

            Push(value with { Flags = ValueFlags.None });
            return true;
        }

        private bool Convert(ILOpCode op)
        {
            if (!Pop(out StackValue value))
            {
                return false;
            }

            if (value.Kind is ValueKind.ByRef or ValueKind.Object or ValueKind.Null)
            {
                Fail(VerifierRules.Pointers, $"converts {value} to a number (an address, as fixed does)");
            }
            else if (value.Kind is not (ValueKind.Int32 or ValueKind.Int64 or ValueKind.NativeInt or ValueKind.Float))
            {
                Fail(VerifierRules.TypeSafety, $"converts {value} to a number");
            }

            ValueKind result = op switch
            {
                ILOpCode.Conv_i8 or ILOpCode.Conv_u8 or ILOpCode.Conv_ovf_i8 or ILOpCode.Conv_ovf_u8 or ILOpCode.Conv_ovf_i8_un
                    or ILOpCode.Conv_ovf_u8_un => ValueKind.Int64,
                ILOpCode.Conv_i or ILOpCode.Conv_u or ILOpCode.Conv_ovf_i or ILOpCode.Conv_ovf_u or ILOpCode.Conv_ovf_i_un
                    or ILOpCode.Conv_ovf_u_un => ValueKind.NativeInt,
                ILOpCode.Conv_r4 or ILOpCode.Conv_r8 or ILOpCode.Conv_r_un => ValueKind.Float,
                _ => ValueKind.Int32,
            };
            Push(new StackValue(result, null));
            return true;
        }

        private static Storage IndirectStorage(ILOpCode op) => op switch
        {
            ILOpCode.Ldind_i1 or ILOpCode.Ldind_u1 or ILOpCode.Stind_i1 => Storage.Int8,
            ILOpCode.Ldind_i2 or ILOpCode.Ldind_u2 or ILOpCode.Stind_i2 => Storage.Int16,
            ILOpCode.Ldind_i4 or ILOpCode.Ldind_u4 or ILOpCode.Stind_i4 => Storage.Int32,
            ILOpCode.Ldind_i8 or ILOpCode.Stind_i8 => Storage.Int64,
            ILOpCode.Ldind_i or ILOpCode.Stind_i => Storage.NativeInt,
            ILOpCode.Ldind_r4 or ILOpCode.Stind_r4 => Storage.Float32,
            ILOpCode.Ldind_r8 or ILOpCode.Stind_r8 => Storage.Float64,
            _ => Storage.Reference,
        };

        private bool LoadIndirect(ILOpCode op)
        {
            if (!Pop(out StackValue address))
            {
                return false;
            }

            Storage storage = IndirectStorage(op);
            if (!Address(address, "a read"))
            {
                // What the instruction would have loaded, so that the rest of the method is still checked.
                Push(storage switch
                {
                    Storage.Reference => new StackValue(ValueKind.Object, Universe.Core("System.Object")),
                    Storage.Int64 => new StackValue(ValueKind.Int64, null),
                    Storage.NativeInt => new StackValue(ValueKind.NativeInt, null),
                    Storage.Float32 or Storage.Float64 => new StackValue(ValueKind.Float, null),
                    _ => StackValue.Int32(),
                });
                return true;
            }

            if (TypeFacts.StorageOf(address.Type!) != storage)
            {
                Fail(VerifierRules.TypeSafety, $"reads {ReferenceJudge.NameOf(address.Type!)} as {storage}");
            }

            Push(TypeFacts.ValueOf(address.Type!) with { Flags = ValueFlags.None });
            return true;
        }

        private bool StoreIndirect(ILOpCode op)
        {
            if (!Pop(out StackValue value) || !Pop(out StackValue address))
            {
                return false;
            }

            if (!Address(address, "a write"))
            {
                return true;
            }

            Writable(address, "a write");
            if (TypeFacts.StorageOf(address.Type!) != IndirectStorage(op))
            {
                Fail(VerifierRules.TypeSafety, $"writes {ReferenceJudge.NameOf(address.Type!)} as {IndirectStorage(op)}");
            }
            else
            {
                Expect(value, address.Type!, "the value written");
            }

            return true;
        }

        private bool LoadObject()
        {
            Type? type = TypeOperand(At);
            if (type is null || !Pop(out StackValue address))
            {
                return false;
            }

            if (Address(address, "a read") && !TypeFacts.SameStorage(address.Type!, type))
            {
                Fail(VerifierRules.TypeSafety, $"reads {ReferenceJudge.NameOf(address.Type!)} as {ReferenceJudge.NameOf(type)}");
            }

            StackValue value = TypeFacts.ValueOf(type);
            if (TypeFacts.CarriesReferences(type) && address.Has(ValueFlags.PointeeMayReferToFrame))
            {
                value = value with { Flags = ValueFlags.MayReferToFrame };
            }

            Push(value);
            return true;
        }

        private bool StoreObject()
        {
            Type? type = TypeOperand(At);
            if (type is null || !Pop(out StackValue value) || !Pop(out StackValue address))
            {
                return false;
            }

            if (!Address(address, "a write"))
            {
                return true;
            }

            Writable(address, "a write");
            if (!TypeFacts.SameStorage(address.Type!, type))
            {
                Fail(VerifierRules.TypeSafety, $"writes {ReferenceJudge.NameOf(address.Type!)} as {ReferenceJudge.NameOf(type)}");
            }

            Expect(value, type, "the value written");
            Store(value, type, address);
            return true;
        }

        private bool InitObject()
        {
            Type? type = TypeOperand(At);
            if (type is null || !Pop(out StackValue address))
            {
                return false;
            }

            if (Address(address, "initobj"))
            {
                Writable(address, "initobj");
                if (!TypeFacts.SameStorage(address.Type!, type))
                {
                    Fail(VerifierRules.TypeSafety, $"initializes {ReferenceJudge.NameOf(address.Type!)} as {ReferenceJudge.NameOf(type)}");
                }
            }

            return true;
        }

        private bool Cast()
        {
            Type? type = TypeOperand(At);
            if (type is null || !Pop(out StackValue value))
            {
                return false;
            }

            if (value.Kind is not (ValueKind.Object or ValueKind.Null))
            {
                Fail(VerifierRules.TypeSafety, $"casts {value}, which is not an object reference");
            }

            Push(new StackValue(ValueKind.Object, type));
            return true;
        }

        private bool Box()
        {
            Type? type = TypeOperand(At);
            if (type is null || !Pop(out StackValue value))
            {
                return false;
            }

            Expect(value, type, "the value boxed");
            if (type.IsByRefLike)
            {
                Fail(VerifierRules.StackEscape, "boxes a ref struct");
            }

            Type boxed = type.IsConstructedGenericType && type.GetGenericTypeDefinition().FullName == "System.Nullable`1" ? type.GetGenericArguments()[0] : type;
            Push(new StackValue(ValueKind.Object, boxed));
            return true;
        }

        private bool Unbox(bool any)
        {
            Type? type = TypeOperand(At);
            if (type is null || !Pop(out StackValue value))
            {
                return false;
            }

            if (value.Kind is not (ValueKind.Object or ValueKind.Null))
            {
                Fail(VerifierRules.TypeSafety, $"unboxes {value}, which is not an object reference");
            }

            Push(any ? TypeFacts.ValueOf(type) : new StackValue(ValueKind.ByRef, type, ValueFlags.ReadOnly));
            return true;
        }

        private bool NewArray()
        {
            Type? type = TypeOperand(At);
            if (type is null || !PopInteger("an array length"))
            {
                return false;
            }

            Push(new StackValue(ValueKind.Object, type.MakeArrayType()) { Flags = ValueFlags.Fresh });
            return true;
        }

        private static Type? ElementOf(StackValue array)
        {
            if (array.Kind != ValueKind.Object || array.Alternatives is not null || !array.Type!.IsArray || array.Type.GetArrayRank() != 1)
            {
                return null;
            }

            return array.Type.GetElementType();
        }

        private bool ArrayAndIndex(out Type? element, out bool isNull)
        {
            element = null;
            isNull = false;
            if (!PopInteger("an array index") || !Pop(out StackValue array))
            {
                return false;
            }

            isNull = array.Kind == ValueKind.Null;
            element = ElementOf(array);
            if (element is null && !isNull)
            {
                Fail(VerifierRules.TypeSafety, $"indexes {array}, which is not a one-dimensional array");
            }

            return true;
        }

        private bool LoadElementAddress(bool readOnlyPrefix)
        {
            Type? type = TypeOperand(At);
            if (type is null || !ArrayAndIndex(out Type? element, out _))
            {
                return false;
            }

            if (element is not null && !(element.Equals(type) || TypeFacts.SameStorage(element, type) && element.IsValueType))
            {
                Fail(VerifierRules.TypeSafety, $"takes the address of a {ReferenceJudge.NameOf(element)} element as {ReferenceJudge.NameOf(type)}");
            }

            Push(new StackValue(ValueKind.ByRef, type, readOnlyPrefix ? ValueFlags.ReadOnly : ValueFlags.None));
            return true;
        }

        private static Storage? ElementStorage(ILOpCode op) => op switch
        {
            ILOpCode.Ldelem_i1 or ILOpCode.Ldelem_u1 or ILOpCode.Stelem_i1 => Storage.Int8,
            ILOpCode.Ldelem_i2 or ILOpCode.Ldelem_u2 or ILOpCode.Stelem_i2 => Storage.Int16,
            ILOpCode.Ldelem_i4 or ILOpCode.Ldelem_u4 or ILOpCode.Stelem_i4 => Storage.Int32,
            ILOpCode.Ldelem_i8 or ILOpCode.Stelem_i8 => Storage.Int64,
            ILOpCode.Ldelem_i or ILOpCode.Stelem_i => Storage.NativeInt,
            ILOpCode.Ldelem_r4 or ILOpCode.Stelem_r4 => Storage.Float32,
            ILOpCode.Ldelem_r8 or ILOpCode.Stelem_r8 => Storage.Float64,
            ILOpCode.Ldelem_ref or ILOpCode.Stelem_ref => Storage.Reference,
            _ => null,
        };

        private bool LoadElement(ILOpCode op)
        {
            Type? type = null;
            if (op == ILOpCode.Ldelem && (type = TypeOperand(At)) is null)
            {
                return false;
            }

            if (!ArrayAndIndex(out Type? element, out bool isNull))
            {
                return false;
            }

            if (element is not null)
            {
                bool matches = type is not null ? TypeFacts.SameStorage(element, type) : TypeFacts.StorageOf(element) == ElementStorage(op);
                if (!matches)
                {
                    Fail(VerifierRules.TypeSafety, $"reads a {ReferenceJudge.NameOf(element)} element with {Instruction.OpCodeName(op)}");
                }

                Push(TypeFacts.ValueOf(type ?? element));
                return true;
            }

            Push(isNull && op == ILOpCode.Ldelem_ref ? StackValue.Null() : TypeFacts.ValueOf(type ?? Universe.Core("System.Object")));
            return true;
        }

        private bool StoreElement(ILOpCode op)
        {
            Type? type = null;
            if (op == ILOpCode.Stelem && (type = TypeOperand(At)) is null)
            {
                return false;
            }

            if (!Pop(out StackValue value) || !ArrayAndIndex(out Type? element, out _))
            {
                return false;
            }

            if (element is null)
            {
                return true;
            }

            bool matches = type is not null ? TypeFacts.SameStorage(element, type) : TypeFacts.StorageOf(element) == ElementStorage(op);
            if (!matches)
            {
                Fail(VerifierRules.TypeSafety, $"writes a {ReferenceJudge.NameOf(element)} element with {Instruction.OpCodeName(op)}");
            }
            else
            {
                Expect(value, element, "the element written");
            }

            return true;
        }

        private bool LoadToken()
        {
            EntityHandle handle = MetadataTokens.EntityHandle(At.Token);
            if (handle.Kind is HandleKind.TypeDefinition or HandleKind.TypeReference or HandleKind.TypeSpecification)
            {
                if (TypeOperand(At) is null)
                {
                    return false;
                }

                Push(new StackValue(ValueKind.Value, Universe.Core("System.RuntimeTypeHandle")));
                return true;
            }

            if (handle.Kind is HandleKind.FieldDefinition or HandleKind.MemberReference && owner._idioms.FeedsArrayInitializer(owner._code, owner._indexOf[At.Offset], owner._resolver, owner._scope))
            {
                if (MemberOperand(judge: false) is null)
                {
                    return false;
                }

                Push(new StackValue(ValueKind.Value, Universe.Core("System.RuntimeFieldHandle")));
                return true;
            }

            Fail(VerifierRules.Reflection, "a method or field handle (ldtoken), the start of reflection");
            return Stop();
        }

        // A readonly field is written by its type's constructors (the static one for a static field) and, for C#'s
        // init-only properties, by the type's own init accessors.
        private bool InOwnConstructor(FieldInfo field) =>
            ((owner._method is ConstructorInfo && owner._method.IsStatic == field.IsStatic)
                || (!field.IsStatic && !owner._method.IsStatic && TypeFacts.IsInitAccessor(owner._method)))
            && owner._method.DeclaringType is { } type && field.DeclaringType is { } declaring && TypeFacts.SameDefinition(type, declaring);

        private bool InstanceField(ILOpCode op)
        {
            if (MemberOperand() is not FieldInfo field)
            {
                return owner._abandoned ? false : Abandon("the operand is not a field");
            }

            StackValue value = default;
            if (op == ILOpCode.Stfld && !Pop(out value))
            {
                return false;
            }

            if (!Pop(out StackValue target))
            {
                return false;
            }

            Type declaring = field.DeclaringType!;
            if (field.IsStatic)
            {
                Fail(VerifierRules.TypeSafety, $"{ReferenceJudge.NameOf(field)} is static");
            }

            bool valid = target.Kind switch
            {
                ValueKind.Null => true,
                ValueKind.Object => !declaring.IsValueType && TypeFacts.CanStore(target, declaring),
                ValueKind.ByRef => TypeFacts.SameStorage(target.Type!, declaring),
                ValueKind.Value => op == ILOpCode.Ldfld && target.Type!.Equals(declaring),
                _ => false,
            };
            if (!valid)
            {
                Fail(target.Kind is ValueKind.NativeInt or ValueKind.Int32 or ValueKind.Int64 ? VerifierRules.Pointers : VerifierRules.TypeSafety,
                    $"{ReferenceJudge.NameOf(field)} of {target}");
            }

            switch (op)
            {
                case ILOpCode.Ldfld:
                    StackValue loaded = TypeFacts.ValueOf(field.FieldType);
                    bool tainted = target.Kind == ValueKind.ByRef ? target.Has(ValueFlags.PointeeMayReferToFrame) : target.Has(ValueFlags.MayReferToFrame);
                    if (tainted && TypeFacts.CarriesReferences(field.FieldType))
                    {
                        loaded = loaded with { Flags = ValueFlags.MayReferToFrame };
                    }

                    Push(loaded);
                    return true;
                case ILOpCode.Ldflda:
                    if (target.Kind == ValueKind.Value)
                    {
                        Fail(VerifierRules.TypeSafety, "the address of a field of a value on the stack");
                    }

                    ValueFlags flags = target.Kind == ValueKind.ByRef
                        ? target.Flags & (ValueFlags.ReadOnly | ValueFlags.InFrame | ValueFlags.MayReferToFrame | ValueFlags.PointeeMayReferToFrame)
                        : ValueFlags.None;
                    if (field.IsInitOnly && !InOwnConstructor(field))
                    {
                        flags |= ValueFlags.ReadOnly;
                    }

                    Push(new StackValue(ValueKind.ByRef, field.FieldType, flags) { Slot = target.Kind == ValueKind.ByRef ? target.Slot : -1 });
                    return true;
                default:
                    Expect(value, field.FieldType, ReferenceJudge.NameOf(field));
                    if (target.Kind == ValueKind.ByRef)
                    {
                        Writable(target, "a field write");
                    }

                    if (field.IsInitOnly && !InOwnConstructor(field))
                    {
                        Fail(VerifierRules.ReadOnlyWrite, $"writes the readonly field {ReferenceJudge.NameOf(field)} outside its constructor");
                    }

                    Store(value, field.FieldType, target.Kind == ValueKind.ByRef ? target : default);
                    return true;
            }
        }

        private bool StaticField(ILOpCode op)
        {
            if (MemberOperand() is not FieldInfo field)
            {
                return owner._abandoned ? false : Abandon("the operand is not a field");
            }

            if (!field.IsStatic)
            {
                Fail(VerifierRules.TypeSafety, $"{ReferenceJudge.NameOf(field)} is not static");
            }

            switch (op)
            {
                case ILOpCode.Ldsfld:
                    Push(TypeFacts.ValueOf(field.FieldType));
                    return true;
                case ILOpCode.Ldsflda:
                    ValueFlags flags = field.IsInitOnly && !InOwnConstructor(field) ? ValueFlags.ReadOnly : ValueFlags.None;
                    if ((field.Attributes & FieldAttributes.HasFieldRVA) != 0)
                    {
                        flags |= ValueFlags.RvaStatic | ValueFlags.ReadOnly;
                    }

                    Push(new StackValue(ValueKind.ByRef, field.FieldType, flags) { Field = field });
                    return true;
                default:
                    if (!Pop(out StackValue value))
                    {
                        return false;
                    }

                    Expect(value, field.FieldType, ReferenceJudge.NameOf(field));
                    if (field.IsInitOnly && !InOwnConstructor(field))
                    {
                        Fail(VerifierRules.ReadOnlyWrite, $"writes the readonly field {ReferenceJudge.NameOf(field)} outside its static constructor");
                    }

                    Store(value, field.FieldType, default);
                    return true;
            }
        }

        private bool LoadFunction(bool isVirtual)
        {
            if (MemberOperand() is not MethodBase method)
            {
                return owner._abandoned ? false : Abandon("the operand is not a method");
            }

            if (isVirtual)
            {
                if (!Pop(out StackValue target))
                {
                    return false;
                }

                if (method.IsStatic || target.Kind is not (ValueKind.Object or ValueKind.Null) || !TypeFacts.CanStore(target, method.DeclaringType!))
                {
                    Fail(VerifierRules.TypeSafety, $"ldvirtftn of {ReferenceJudge.NameOf(method)} on {target}");
                }
            }

            Push(new StackValue(ValueKind.MethodPointer, null) { Method = method });
            return true;
        }

        private bool Call(ILOpCode op, Type? constrained)
        {
            EntityHandle handle = MetadataTokens.EntityHandle(At.Token);
            if (MemberOperand(judge: false) is not MethodBase method)
            {
                return owner._abandoned ? false : Abandon("the operand is not a method");
            }

            bool newObject = op == ILOpCode.Newobj;
            ParameterInfo[] parameters = method.GetParameters();
            bool hasThis = !method.IsStatic && !newObject;
            int count = parameters.Length + (hasThis ? 1 : 0);
            if (stack.Count < count)
            {
                return Abandon($"{ReferenceJudge.NameOf(method)} takes {count} values, the stack holds {stack.Count}");
            }

            if (newObject && owner._idioms.IsConstantSpan(method, stack))
            {
                owner._seen.Add(handle);
                Pop(2, out _);
                Push(new StackValue(ValueKind.Value, method.DeclaringType));
                return true;
            }

            if (newObject && method.DeclaringType is { } delegateType && TypeFacts.IsDelegate(delegateType))
            {
                owner.JudgeUse(method, handle);
                return NewDelegate(delegateType);
            }

            string? idiomProblem = null;
            bool idiom = method is MethodInfo info && owner._idioms.IsInlineArrayHelper(info, stack, out idiomProblem);
            if (idiom)
            {
                owner._seen.Add(handle);
                if (idiomProblem is not null)
                {
                    Fail(VerifierRules.UnsafeClass, idiomProblem);
                }
            }
            else
            {
                owner.JudgeUse(method, handle);
            }

            Pop(count, out StackValue[] arguments);
            bool contributes = false;
            for (int i = 0; i < parameters.Length; i++)
            {
                StackValue argument = arguments[i + (hasThis ? 1 : 0)];
                ParameterInfo parameter = parameters[i];
                Expect(argument, parameter.ParameterType, $"argument {i + 1} of {ReferenceJudge.NameOf(method)}");
                if (parameter.ParameterType.IsByRef && argument.Has(ValueFlags.ReadOnly) && !TypeFacts.IsReadOnlyParameter(parameter))
                {
                    Fail(VerifierRules.ReadOnlyWrite, $"a read-only reference passed as a writable one to {ReferenceJudge.NameOf(method)}");
                }

                contributes |= Contribution(argument, parameter.ParameterType, TypeFacts.IsScoped(parameter));
            }

            if (hasThis)
            {
                CheckThis(arguments[0], method, constrained);
                bool scopedThis = method.DeclaringType!.IsValueType && !TypeFacts.HasUnscopedThis(method);
                contributes |= Contribution(arguments[0], arguments[0].Kind == ValueKind.ByRef ? arguments[0].Type!.MakeByRefType() : method.DeclaringType!, scopedThis);
            }

            WriteBack(method, parameters, arguments, hasThis);

            if (newObject)
            {
                Type created = method.DeclaringType!;
                StackValue result = TypeFacts.ValueOf(created) with { Flags = ValueFlags.Fresh };
                if (TypeFacts.CarriesReferences(created) && contributes)
                {
                    result = result with { Flags = ValueFlags.MayReferToFrame };
                }

                Push(result);
                return true;
            }

            if (method is MethodInfo called && called.ReturnType.FullName != "System.Void")
            {
                StackValue result = TypeFacts.ValueOf(called.ReturnType);
                ValueFlags flags = ValueFlags.None;
                if (called.ReturnType.IsByRef && TypeFacts.ReturnsReadOnly(called))
                {
                    flags |= ValueFlags.ReadOnly;
                }

                if (contributes && TypeFacts.CarriesReferences(called.ReturnType))
                {
                    flags |= ValueFlags.MayReferToFrame;
                }

                if (called.Name == "<Clone>$" && Universe.OriginOf(called.DeclaringType!.Assembly) != AssemblyOrigin.Package)
                {
                    flags |= ValueFlags.Fresh;
                }

                Push(result with { Flags = flags });
            }

            return true;
        }

        // Whether an argument can carry a reference into this frame into the callee's result.
        private static bool Contribution(StackValue argument, Type parameterType, bool scoped)
        {
            if (parameterType.IsByRef)
            {
                bool address = !scoped && argument.Has(ValueFlags.MayReferToFrame);
                bool pointee = TypeFacts.CarriesReferences(parameterType.GetElementType()!) && argument.Has(ValueFlags.PointeeMayReferToFrame);
                return address || pointee;
            }

            return !scoped && TypeFacts.CarriesReferences(parameterType) && argument.Has(ValueFlags.MayReferToFrame);
        }

        // The callee may write into every writable reference to a ref struct it was given a value derived from the
        // other arguments: such a reference into this frame now may refer to the frame; one elsewhere is an escape.
        private void WriteBack(MethodBase method, ParameterInfo[] parameters, StackValue[] arguments, bool hasThis)
        {
            int first = hasThis ? 1 : 0;
            for (int target = 0; target < arguments.Length; target++)
            {
                StackValue reference = arguments[target];
                ParameterInfo? parameter = target >= first ? parameters[target - first] : null;
                Type? pointee = reference.Kind == ValueKind.ByRef ? reference.Type : null;
                if (pointee is null || !TypeFacts.CarriesReferences(pointee) || (parameter is not null && TypeFacts.IsReadOnlyParameter(parameter))
                    || (parameter is null && TypeFacts.HasReadOnlyThis(method)))
                {
                    continue;
                }

                bool others = false;
                for (int source = 0; source < arguments.Length; source++)
                {
                    if (source == target)
                    {
                        continue;
                    }

                    ParameterInfo? sourceParameter = source >= first ? parameters[source - first] : null;
                    Type sourceType = sourceParameter?.ParameterType
                        ?? (arguments[source].Kind == ValueKind.ByRef ? arguments[source].Type!.MakeByRefType() : method.DeclaringType!);
                    others |= Contribution(arguments[source], sourceType, sourceParameter is not null && TypeFacts.IsScoped(sourceParameter));
                }

                if (!others)
                {
                    continue;
                }

                if (reference.Has(ValueFlags.InFrame) && reference.Slot >= 0)
                {
                    slots[reference.Slot] |= ValueFlags.MayReferToFrame;
                }
                else
                {
                    Fail(VerifierRules.StackEscape, $"{ReferenceJudge.NameOf(method)} may store a reference into this frame where the caller sees it");
                }
            }
        }

        private void CheckThis(StackValue self, MethodBase method, Type? constrained)
        {
            Type declaring = method.DeclaringType!;
            if (constrained is not null)
            {
                if (self.Kind != ValueKind.ByRef || !TypeFacts.SameStorage(self.Type!, constrained))
                {
                    Fail(VerifierRules.TypeSafety, $"a constrained call on {self}, not a reference to {ReferenceJudge.NameOf(constrained)}");
                }
                else if (self.Has(ValueFlags.ReadOnly) && (constrained.IsValueType || constrained.IsGenericParameter)
                    && !TypeFacts.HasAttribute(constrained, "System.Runtime.CompilerServices.IsReadOnlyAttribute"))
                {
                    Fail(VerifierRules.ReadOnlyWrite, $"{ReferenceJudge.NameOf(method)} called through a read-only reference");
                }

                return;
            }

            if (declaring.IsValueType)
            {
                if (self.Kind != ValueKind.ByRef || !TypeFacts.SameStorage(self.Type!, declaring))
                {
                    Fail(VerifierRules.TypeSafety, $"{ReferenceJudge.NameOf(method)} called on {self}");
                }
                else if (self.Has(ValueFlags.ReadOnly) && !TypeFacts.HasReadOnlyThis(method))
                {
                    Fail(VerifierRules.ReadOnlyWrite, $"{ReferenceJudge.NameOf(method)} may write through a read-only reference");
                }
            }
            else if (self.Kind is not (ValueKind.Object or ValueKind.Null) || !TypeFacts.CanStore(self, declaring))
            {
                Fail(self.Kind is ValueKind.NativeInt or ValueKind.Int32 or ValueKind.Int64 ? VerifierRules.Pointers : VerifierRules.TypeSafety,
                    $"{ReferenceJudge.NameOf(method)} called on {self}");
            }

            if (TypeFacts.IsInitAccessor(method) && Universe.OriginOf(declaring.Assembly) != AssemblyOrigin.Package
                && !self.Has(ValueFlags.Fresh) && !self.Has(ValueFlags.InFrame))
            {
                Fail(VerifierRules.ReadOnlyWrite, $"the init accessor {ReferenceJudge.NameOf(method)} on an object this method did not create");
            }
        }

        private bool NewDelegate(Type delegateType)
        {
            if (!Pop(out StackValue function) || !Pop(out StackValue target))
            {
                return false;
            }

            if (function.Kind != ValueKind.MethodPointer || function.Method is null)
            {
                Fail(VerifierRules.MethodPointer, $"a delegate constructed from {function}, not from ldftn");
                Push(new StackValue(ValueKind.Object, delegateType));
                return true;
            }

            MethodBase method = function.Method;
            MethodInfo? invoke = delegateType.GetMethod("Invoke");
            string? problem = invoke is null ? "the delegate type has no Invoke method" : DelegateMismatch(invoke, method, target);
            if (problem is not null)
            {
                Fail(VerifierRules.MethodPointer, $"{ReferenceJudge.NameOf(method)} bound to {ReferenceJudge.NameOf(delegateType)}: {problem}");
            }

            Push(new StackValue(ValueKind.Object, delegateType, ValueFlags.Fresh));
            return true;
        }

        private static string? DelegateMismatch(MethodInfo invoke, MethodBase method, StackValue target)
        {
            ParameterInfo[] delegateParameters = invoke.GetParameters();
            ParameterInfo[] methodParameters = method.GetParameters();
            int skip = 0;
            if (method.IsStatic)
            {
                if (target.Kind != ValueKind.Null)
                {
                    // A static method closed over its first argument (an extension method group).
                    if (methodParameters.Length == 0 || methodParameters[0].ParameterType.IsValueType || !TypeFacts.CanStore(target, methodParameters[0].ParameterType))
                    {
                        return $"the target {target} does not fit its first parameter";
                    }

                    skip = 1;
                }
            }
            else if (target.Kind != ValueKind.Object || !TypeFacts.CanStore(target, method.DeclaringType!))
            {
                return $"the target {target} is not a {ReferenceJudge.NameOf(method.DeclaringType!)}";
            }

            if (methodParameters.Length - skip != delegateParameters.Length)
            {
                return "the parameter counts differ";
            }

            for (int i = 0; i < delegateParameters.Length; i++)
            {
                if (!ParameterFits(delegateParameters[i].ParameterType, methodParameters[i + skip].ParameterType))
                {
                    return $"parameter {i + 1} differs";
                }
            }

            Type methodReturn = method is MethodInfo info ? info.ReturnType : invoke.ReturnType;
            return ParameterFits(methodReturn, invoke.ReturnType) ? null : "the return types differ";
        }

        // A value of type 'from' may flow where 'to' is expected: same type, or a reference type assignable to it.
        private static bool ParameterFits(Type from, Type to)
        {
            if (from.IsByRef || to.IsByRef)
            {
                return from.IsByRef && to.IsByRef && TypeFacts.SameStorage(from.GetElementType()!, to.GetElementType()!);
            }

            if (TypeFacts.StorageOf(to) == Storage.Reference && TypeFacts.StorageOf(from) == Storage.Reference)
            {
                return TypeFacts.IsAssignable(to, from);
            }

            return TypeFacts.SameStorage(from, to);
        }
    }
}
