// The IL type checker's semantics of the instructions that reach other members: field access, method pointers,
// calls and object creation (with the argument checks, the read-only and frame-reference rules across a call, and
// delegate construction). The rest of the instructions and the data flow are in MethodVerifier.cs.
using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;

namespace Palisade.Kernel.Drivers.Verification;

internal sealed partial class MethodVerifier
{
    private sealed partial class Frame
    {
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
