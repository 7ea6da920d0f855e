using System.Reflection.Emit;
using Palisade.Api;
using Palisade.Kernel;
using Palisade.Kernel.Drivers;
using Palisade.Kernel.Processes;

namespace Palisade.Guard.Tests;

/// <summary>
/// The compat flavor boots with no guard at all, so the same signed attack packages the protected flavor stops take
/// effect there: proof that what the guard catches are real hooks. The guard attacks have nothing to attack there
/// and fail to load with NotFound.
/// </summary>
public sealed class CompatTests
{
    [Theory]
    [InlineData("inline-detour", "form=e9", "Palisade.Attacks.FileServiceHook")]
    [InlineData("inline-detour", "form=ff25", "Palisade.Attacks.FileServiceHook")]
    [InlineData("stub-cell-swap", null, "Palisade.Attacks.FileServiceHook")]
    [InlineData("ssdt-hook", null, "Palisade.Attacks.FileServiceHook")]
    public void File_service_hook_decides_every_open_in_the_compat_flavor(string package, string? parameter, string hook)
    {
        using var bed = new AttackBed(KernelFlavor.Compat);
        Assert.Null(bed.Protection.Guard);
        string file = bed.WriteFile("hello.txt", "hello");
        Assert.Equal(Status.Success, bed.Open(file));

        DriverObject attack = bed.Load(package, parameter is null ? [] : [parameter]);
        long refused = AttackBed.Counter(attack, hook, "Refused");

        Assert.Equal(Status.AccessDenied, bed.Open(file));
        Assert.Equal(refused + 1, AttackBed.Counter(attack, hook, "Refused"));
    }

    [Fact]
    public void Removed_antivirus_callbacks_let_the_test_virus_through_in_the_compat_flavor()
    {
        using var bed = new AttackBed(KernelFlavor.Compat);
        bed.Load("drivers/out/antivirus");
        string eicar = bed.WriteFile("eicar.com", File.ReadAllText(Path.Combine(Repository.Root, "samples", "eicar.com")));
        Assert.Equal(Status.AccessDenied, bed.Open(eicar));

        bed.Load("callback-remove", "victim=antivirus");

        Assert.Equal(Status.Success, bed.Open(eicar));
    }

    [Fact]
    public void Inserted_process_create_callback_refuses_images_in_the_compat_flavor()
    {
        using var bed = new AttackBed(KernelFlavor.Compat);
        Assert.Equal(Status.Success, bed.Exec(300, "/usr/bin/id"));

        DriverObject attack = bed.Load("callback-insert", "deny=/id");

        Assert.Equal(Status.AccessDenied, bed.Exec(301, "/usr/bin/id"));
        Assert.Equal(Status.Success, bed.Exec(302, "/usr/bin/env"));
        Assert.Equal(2, AttackBed.Counter(attack, "Palisade.Attacks.StructureTamper.CallbackInsertionDriver", "Calls"));
    }

    [Fact]
    public void Unlinked_process_is_hidden_from_the_active_process_list_in_the_compat_flavor()
    {
        using var bed = new AttackBed(KernelFlavor.Compat);
        bed.Kernel.ProcessTable.Add(4242, 1, 1000, out _);
        bed.Kernel.ProcessTable.Add(4243, 1, 1000, out _);

        bed.Load("process-unlink", "pid=4242");

        Assert.DoesNotContain(4242, Linked(bed.Kernel.ProcessTable.Head));
        Assert.Contains(4243, Linked(bed.Kernel.ProcessTable.Head));
        Assert.NotNull(bed.Kernel.ProcessTable.Find(4242));

        static List<int> Linked(GuestProcess? head)
        {
            var pids = new List<int>();
            for (GuestProcess? p = head; p is not null; p = p.Next)
            {
                pids.Add(p.ProcessId);
            }

            return pids;
        }
    }

    [Fact]
    public void Driver_hidden_from_the_loaded_driver_list_stays_loaded_in_the_compat_flavor()
    {
        using var bed = new AttackBed(KernelFlavor.Compat);

        DriverObject hidden = bed.Load("driver-hide");

        var linked = new List<DriverObject>();
        for (DriverObject? d = bed.Kernel.Drivers.Head; d is not null; d = d.Next)
        {
            linked.Add(d);
        }

        Assert.DoesNotContain(hidden, linked);
        Assert.Same(hidden, bed.Kernel.Drivers.Find("driver-hide"));
    }

    [Fact]
    public void Replaced_process_open_procedure_sees_every_process_handle_in_the_compat_flavor()
    {
        using var bed = new AttackBed(KernelFlavor.Compat);
        bed.Kernel.ProcessTable.Add(100, 1, 1000, out _);
        bed.Kernel.ProcessTable.Add(200, 1, 1000, out _);

        DriverObject attack = bed.Load("object-type-hook");
        long kernelOpens = Palisade.Kernel.Objects.ObjectManager.OpenCount;

        Assert.Equal(Status.Success, bed.OpenProcess(100, 200));
        Assert.Equal(1, AttackBed.Counter(attack, "Palisade.Attacks.StructureTamper.ObjectTypeHookDriver", "Opens"));
        Assert.Equal(kernelOpens, Palisade.Kernel.Objects.ObjectManager.OpenCount);
    }

    [Fact]
    public void Hooked_jit_sees_methods_compiled_after_it_in_the_compat_flavor()
    {
        using var bed = new AttackBed(KernelFlavor.Compat);
        DriverObject attack = bed.Load("jit-hook");
        long before = AttackBed.Counter(attack, "Palisade.Attacks.JitHook.JitHookAttack", "Compilations");

        var method = new DynamicMethod("freshly_compiled", typeof(int), Type.EmptyTypes);
        ILGenerator il = method.GetILGenerator();
        il.Emit(OpCodes.Ldc_I4, 109);
        il.Emit(OpCodes.Ret);
        Assert.Equal(109, ((Func<int>)method.CreateDelegate(typeof(Func<int>)))());

        Assert.True(AttackBed.Counter(attack, "Palisade.Attacks.JitHook.JitHookAttack", "Compilations") > before);
    }

    [Theory]
    [InlineData("guard-stop")]
    [InlineData("guard-starve")]
    [InlineData("guard-code-patch")]
    public void Guard_attacks_find_no_guard_in_the_compat_flavor(string package)
    {
        using var bed = new AttackBed(KernelFlavor.Compat);

        Assert.Equal(Status.NotFound, bed.Load(package, out DriverObject? _));
    }
}
