# The ccci flake: the package, an overlay, the NixOS module and a dev shell.
{
  description = "ccci: always-on CI service for Co-op Cloud recipes";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      overlays.default = final: prev: { ccci = final.callPackage ./nix/package.nix { }; };

      packages = forAllSystems (pkgs: rec {
        ccci = pkgs.callPackage ./nix/package.nix { };
        default = ccci;
      });

      # The package builds against the system's own nixpkgs, so the module
      # works without the overlay and with an externally built pkgs.
      nixosModules.ccci =
        { lib, pkgs, ... }:
        {
          imports = [ ./nix/module.nix ];
          services.ccci.package = lib.mkDefault (pkgs.callPackage ./nix/package.nix { });
        };
      nixosModules.default = self.nixosModules.ccci;

      checks = forAllSystems (pkgs: {
        inherit (self.packages.${pkgs.stdenv.hostPlatform.system}) ccci;
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.stdenv.hostPlatform.system}.ccci ];
          # cmocka is a library pkg-config must find, so a build input.
          buildInputs = [ pkgs.cmocka ];
          packages = with pkgs; [
            cmake
            pkg-config
            python3
            clang
            clang-tools
          ];
        };
      });
    };
}
