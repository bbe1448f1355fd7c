# The ccci package: the CMake build at the repository root, with its tests.
{
  lib,
  stdenv,
  cmake,
  pkg-config,
  libuv,
  curl,
  libyaml,
  jansson,
  cmocka,
  python3,
  git,
  openssl,
  http-parser,
}:

stdenv.mkDerivation (finalAttrs: {
  pname = "ccci";
  # Keep in step with project(ccci VERSION ...) in CMakeLists.txt.
  version = "0.1.0";

  # Only what the build reads, so edits to docs/ or nix/ do not rebuild. A
  # directory CMake starts to read must be added here. In a flake only files
  # that git tracks are seen at all.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions (
      [
        ../CMakeLists.txt
        ../src
        ../python
        ../third_party
      ]
      ++ map lib.fileset.maybeMissing [
        ../include
        ../examples
        ../docs
        ../tests
        ../scripts
        ../bench
        ../fuzz
      ]
    );
  };

  strictDeps = true;

  nativeBuildInputs = [
    cmake
    pkg-config
  ];

  buildInputs = [
    libuv
    curl
    libyaml
    jansson
    http-parser
    openssl
  ];

  cmakeFlags = [
    # Where the examples (the example harness and recipes) are installed.
    (lib.cmakeFeature "CCCI_EXAMPLES_DIR" "${placeholder "out"}/share/ccci/examples")
    (lib.cmakeBool "CCCI_WERROR" false)
    (lib.cmakeBool "CCCI_BENCH" false)
    # The tests need cmocka at configure time, so build them only when they run.
    (lib.cmakeBool "CCCI_TESTS" finalAttrs.doInstallCheck)
  ];

  # Test helpers, fakes and the example harness may use /usr/bin/env, which
  # the build sandbox lacks. Installed files are patched by the fixup phase.
  postPatch = ''
    for d in tests scripts examples; do
      if [ -d "$d" ]; then
        patchShebangs "$d"
      fi
    done
  '';

  # The tests run after installation rather than in checkPhase: some use
  # the example harness in $out/share/ccci/examples, which must exist by
  # then. cmocka is linked into the unit tests (a host library that
  # pkg-config must find); the integration tests need python3's stdlib, git
  # (the harness and the example recipe repos) and openssl (the gateway fake).
  doInstallCheck = stdenv.buildPlatform.canExecute stdenv.hostPlatform;
  installCheckInputs = [ cmocka ];
  nativeInstallCheckInputs = [
    python3
    git
    openssl
  ];
  postConfigure = ''
    cmakeBuildDirAbs=$PWD
  '';
  installCheckPhase = ''
    runHook preInstallCheck
    ctest --test-dir "$cmakeBuildDirAbs" --output-on-failure -j "$NIX_BUILD_CORES"
    runHook postInstallCheck
  '';

  meta = {
    description = "Always-on CI service for Co-op Cloud recipes";
    longDescription = ''
      ccci polls a Gitea or Forgejo organisation for `!testme` comments,
      deploys the recipe at that commit onto a Docker Swarm, runs its test
      tiers, tears it down and reports back to the pull request with a
      status, a results comment, a badge and a live, redacted log.
    '';
    license = lib.licenses.agpl3Plus;
    mainProgram = "ccci";
    platforms = lib.platforms.linux;
  };
})
