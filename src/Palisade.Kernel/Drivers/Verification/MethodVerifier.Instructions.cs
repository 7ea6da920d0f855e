// The IL type checker's semantics of each instruction over one state's stack and slots: loads and stores of
// locals, arguments and memory, arithmetic, comparisons, conversions, boxing, arrays and tokens. Field access,
// method pointers and calls are in MethodVerifier.Members.cs; the data flow is in MethodVerifier.cs.
using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;

namespace Palisade.Kernel.Drivers.Verification;

internal sealed partial class MethodVerifier
{
    /// <summary>The instruction semantics, over one state's stack and slots.</summary>
    private sealed partial class Frame(MethodVerifier owner, List<StackValue> stack, ValueFlags[] slots, Instruction at)
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
    }
}
