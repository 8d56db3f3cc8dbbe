;; Hostile guest written at the canonical-ABI level: a verifier whose `verify` returns
;; whatever bytes the test asks for. The candidate's text is hex; `verify` decodes it into
;; the buffer at 8192 and returns 8192 + the candidate's index as its return pointer, so a
;; test controls every byte of the `result<verdict, plugin-error>` the host lifts (and can
;; misalign it). `tests/runtime.rs` embeds the `verifier` world and encodes the component.
;;
;; Memory: 64..104 the plugin-info record, 128 a zeroed ok-result, 256.. its strings,
;; 8192..16383 the decoded return area, 16384.. the bump allocator behind cabi_realloc.
(module
  (memory (export "memory") 2)
  (global $bump (mut i32) (i32.const 16384))

  ;; plugin-info { name, version, kind, description, stateless, config-keys }
  (data (i32.const 64)
    "\00\01\00\00" "\08\00\00\00"   ;; name        -> 256, 8
    "\10\01\00\00" "\05\00\00\00"   ;; version     -> 272, 5
    "\00\00\00\00"                  ;; kind verifier (+ padding)
    "\20\01\00\00" "\18\00\00\00"   ;; description -> 288, 24
    "\00\00\00\00"                  ;; stateless false (+ padding): a fresh instance per call
    "\00\00\00\00" "\00\00\00\00")  ;; config-keys: empty list
  (data (i32.const 256) "abi-liar")
  (data (i32.const 272) "0.1.0")
  (data (i32.const 288) "returns malformed values")

  (func (export "cabi_realloc")
    (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32)
    (local.set $p
      (i32.and
        (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (global.set $bump (i32.add (local.get $p) (local.get $size)))
    (if (i32.gt_u (global.get $bump) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq
              (memory.grow
                (i32.add
                  (i32.shr_u
                    (i32.sub (global.get $bump) (i32.mul (memory.size) (i32.const 65536)))
                    (i32.const 16))
                  (i32.const 1)))
              (i32.const -1))
          (then unreachable))))
    (if (local.get $old)
      (then (memory.copy (local.get $p) (local.get $old) (local.get $old_size))))
    (local.get $p)) ;; the allocation (tests swap in bad ones)

  (func (export "arbiter:plugin/verification@0.1.0#info") (result i32)
    (i32.const 64))

  ;; result<_, plugin-error>: all zeroes is `ok`.
  (func (export "arbiter:plugin/verification@0.1.0#check-config")
    (param i32 i32) (result i32)
    (i32.const 128))

  ;; config (2) + task (8) + candidate: index, model (2), text (2) = 15 flat parameters.
  (func (export "arbiter:plugin/verification@0.1.0#verify")
    (param i32 i32  i32 i32 i32 i32 i32 i32 i32 i32)
    (param $index i32) (param i32 i32) (param $text i32) (param $len i32)
    (result i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (i32.add (local.get $i) (i32.const 1)) (local.get $len)))
        (br_if $done (i32.ge_u (local.get $i) (i32.const 16384)))
        (i32.store8
          (i32.add (i32.const 8192) (i32.shr_u (local.get $i) (i32.const 1)))
          (i32.or
            (i32.shl
              (call $nibble (i32.load8_u (i32.add (local.get $text) (local.get $i))))
              (i32.const 4))
            (call $nibble
              (i32.load8_u
                (i32.add (local.get $text) (i32.add (local.get $i) (i32.const 1)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 2)))
        (br $next)))
    (i32.add (i32.const 8192) (local.get $index)))

  ;; config (2) + task (8) + candidates (2). A valid, empty `ok` selection.
  (func (export "arbiter:plugin/verification@0.1.0#select")
    (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
    (i32.const 128))

  (func $nibble (param $c i32) (result i32)
    (if (result i32) (i32.le_u (local.get $c) (i32.const 57))
      (then (i32.sub (local.get $c) (i32.const 48)))
      (else (i32.sub (local.get $c) (i32.const 87))))))
