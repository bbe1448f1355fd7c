# abra.sh of the example recipe: no config versions or commands.
export NGINX_CONF_VERSION=v1
