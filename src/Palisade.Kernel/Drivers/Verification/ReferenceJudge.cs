// Judges what a driver's code names: a type or a member, wherever it comes from. The package's own types and
// Palisade.Api are the driver's to use (the package's code is verified with the same rules); the base library goes
// through the allowlist (BaseLibraryPolicy); anything else is not part of the driver contract.
using System.Reflection;

namespace Palisade.Kernel.Drivers.Verification;

/// <summary>A refusal of one type or member: the rule and the name to report.</summary>
internal readonly record struct Judgement(VerifierRule Rule, string What);

/// <summary>Judges types and members for one package universe; remembers its answers.</summary>
internal sealed class ReferenceJudge(VerifierUniverse universe)
{
    private readonly Dictionary<Type, Judgement?> _types = [];
    private readonly Dictionary<MemberInfo, Judgement?> _members = [];

    /// <summary>The universe the judged types belong to.</summary>
    public VerifierUniverse Universe => universe;

    /// <summary>Null when drivers may use the type (and every type it is built from).</summary>
    public Judgement? JudgeType(Type type)
    {
        if (_types.TryGetValue(type, out Judgement? known))
        {
            return known;
        }

        Judgement? judgement = Judge(type);
        _types[type] = judgement;
        return judgement;
    }

    /// <summary>Null when drivers may use the member: its declaring type, its signature and the member itself pass.</summary>
    public Judgement? JudgeMember(MemberInfo member)
    {
        if (_members.TryGetValue(member, out Judgement? known))
        {
            return known;
        }

        Judgement? judgement = Judge(member);
        _members[member] = judgement;
        return judgement;
    }

    /// <summary>A readable name: namespace, outer types and name, without generic arity or arguments.</summary>
    public static string NameOf(Type type)
    {
        if (type.HasElementType)
        {
            string element = NameOf(type.GetElementType()!);
            return type.IsArray ? element + "[]" : type.IsByRef ? element + "&" : element + "*";
        }

        if (type.IsGenericParameter)
        {
            return type.Name;
        }

        Type definition = type.IsConstructedGenericType ? type.GetGenericTypeDefinition() : type;
        string name = StripArity(definition.Name);
        if (definition.DeclaringType is { } outer)
        {
            return NameOf(outer) + "." + name;
        }

        return string.IsNullOrEmpty(definition.Namespace) ? name : definition.Namespace + "." + name;
    }

    /// <summary>A readable name for a member: its type's name and its own.</summary>
    public static string NameOf(MemberInfo member) =>
        (member.DeclaringType is { } type ? NameOf(type) + "." : "") + member.Name;

    /// <summary>The full name of a type's generic definition, the key of the allowlist (nested types as Outer+Inner).</summary>
    public static string DefinitionName(Type type)
    {
        Type definition = type.IsConstructedGenericType ? type.GetGenericTypeDefinition() : type;
        return definition.FullName ?? definition.Name;
    }

    private static string StripArity(string name)
    {
        int tick = name.IndexOf('`', StringComparison.Ordinal);
        return tick < 0 ? name : name[..tick];
    }

    private Judgement? Judge(Type type)
    {
        if (type.IsPointer)
        {
            return new Judgement(VerifierRules.Pointers, NameOf(type));
        }

        if (type.IsFunctionPointer)
        {
            return new Judgement(VerifierRules.FunctionPointers, "a function pointer type");
        }

        if (type.HasElementType)
        {
            return JudgeType(type.GetElementType()!);
        }

        if (type.IsGenericParameter)
        {
            return null;
        }

        if (type.IsConstructedGenericType)
        {
            if (JudgeType(type.GetGenericTypeDefinition()) is { } definition)
            {
                return definition;
            }

            foreach (Type argument in type.GetGenericArguments())
            {
                if (JudgeType(argument) is { } refused)
                {
                    return refused;
                }
            }

            return null;
        }

        switch (universe.OriginOf(type.Assembly))
        {
            case AssemblyOrigin.Package:
            case AssemblyOrigin.Api:
                return null;
            case AssemblyOrigin.BaseLibrary:
                return BaseLibraryPolicy.JudgeType(DefinitionName(type)) is { } rule ? new Judgement(rule, NameOf(type)) : null;
            default:
                return new Judgement(VerifierRules.ForeignAssembly, $"{NameOf(type)} (from {type.Assembly.GetName().Name})");
        }
    }

    private Judgement? Judge(MemberInfo member)
    {
        Type? declaring = member.DeclaringType;
        if (declaring is not null && JudgeType(declaring) is { } refusedType)
        {
            return refusedType with { What = NameOf(member) };
        }

        if (PointerIn(member) is { } pointer)
        {
            return pointer with { What = NameOf(member) };
        }

        if (member is MethodInfo { IsGenericMethod: true, IsGenericMethodDefinition: false } generic)
        {
            foreach (Type argument in generic.GetGenericArguments())
            {
                if (JudgeType(argument) is { } refusedArgument)
                {
                    return refusedArgument with { What = $"{NameOf(member)}<{refusedArgument.What}>" };
                }
            }
        }

        if (declaring is not null && universe.OriginOf(declaring.Assembly) == AssemblyOrigin.BaseLibrary
            && BaseLibraryPolicy.JudgeMember(DefinitionName(declaring), member) is { } rule)
        {
            return new Judgement(rule, NameOf(member));
        }

        return null;
    }

    // A member whose signature takes or returns a pointer is an unsafe member, whatever its type.
    private static Judgement? PointerIn(MemberInfo member)
    {
        switch (member)
        {
            case FieldInfo field:
                return PointerIn(field.FieldType);
            case MethodBase method:
                if (method is MethodInfo withReturn && PointerIn(withReturn.ReturnType) is { } inReturn)
                {
                    return inReturn;
                }

                foreach (ParameterInfo parameter in method.GetParameters())
                {
                    if (PointerIn(parameter.ParameterType) is { } inParameter)
                    {
                        return inParameter;
                    }
                }

                return null;
            default:
                return null;
        }
    }

    private static Judgement? PointerIn(Type type)
    {
        if (type.IsPointer)
        {
            return new Judgement(VerifierRules.Pointers, "");
        }

        if (type.IsFunctionPointer)
        {
            return new Judgement(VerifierRules.FunctionPointers, "");
        }

        if (type.HasElementType)
        {
            return PointerIn(type.GetElementType()!);
        }

        if (type.IsConstructedGenericType)
        {
            foreach (Type argument in type.GetGenericArguments())
            {
                if (PointerIn(argument) is { } found)
                {
                    return found;
                }
            }
        }

        return null;
    }
}
