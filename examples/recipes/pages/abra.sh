# abra.sh of the pages example recipe: no config files, no commands yet.
export PAGES_VERSION=v1
