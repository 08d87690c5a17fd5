# packaging/cmake/MeshCPack.cmake - CPack .deb and .rpm packages from the install rules
# of MeshInstall.cmake (one package per component). See packaging/README-packaging.md.
#
#   cmake -S . -B build-deb -DCMAKE_INSTALL_PREFIX=/usr && cmake --build build-deb
#   (cd build-deb && cpack -G DEB)
#     -> libmesh1_1.0.0-1_amd64.deb libmesh-dev_1.0.0-1_amd64.deb libmesh_1.0.0-1_amd64.deb
#   cmake -S . -B build-rpm -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_LIBDIR=lib64
#   cmake --build build-rpm && (cd build-rpm && cpack -G RPM)
#     -> libmesh-1.0.0-1.x86_64.rpm libmesh-devel-1.0.0-1.x86_64.rpm
#        libmesh-common-1.0.0-1.x86_64.rpm
#
# The .deb packages share their maintainer scripts, copyright file and changelog with
# debian/ (the source package built by dpkg-buildpackage); the .rpm scriptlets are in
# packaging/rpm/. MESH_PACKAGE_RELEASE (default 1) is the Debian revision / RPM release.

set(MESH_PACKAGE_RELEASE 1 CACHE STRING "Package release (Debian revision, RPM Release)")
set(MESH_PACKAGE_CONTACT "libmesh maintainers <maintainers@users.noreply.r-seed-8eb03c75.example>")
set(MESH_PACKAGE_URL "" CACHE STRING "Project home page for the package metadata (none yet)")

set(CPACK_PACKAGE_NAME libmesh)
set(CPACK_PACKAGE_VENDOR "The libmesh authors")
set(CPACK_PACKAGE_CONTACT "${MESH_PACKAGE_CONTACT}")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
# No CPACK_PACKAGE_DESCRIPTION_SUMMARY: CPack DEB would put it in front of each
# package's own synopsis line (CPACK_DEBIAN_<COMP>_DESCRIPTION, first line); the RPM
# packages have CPACK_RPM_<COMP>_PACKAGE_SUMMARY.
set(CPACK_RESOURCE_FILE_LICENSE "${PROJECT_SOURCE_DIR}/LICENSE")
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_PACKAGE_RELOCATABLE OFF)     # RPM: no Relocations, /etc/mesh.conf is fine
set(CPACK_STRIP_FILES TRUE)
set(CPACK_COMPONENTS_ALL runtime dev common)
if(MESH_LAYOUT STREQUAL "rpm")
  set(CPACK_GENERATOR RPM)
else()
  set(CPACK_GENERATOR DEB)
endif()
# Checks at cpack time that the documentation layout fits the generator.
configure_file(${PROJECT_SOURCE_DIR}/packaging/cmake/MeshCPackProject.cmake.in
  ${MESH_PKG_DIR}/MeshCPackProject.cmake @ONLY)
set(CPACK_PROJECT_CONFIG_FILE ${MESH_PKG_DIR}/MeshCPackProject.cmake)

set(mesh_description_common
"libmesh is a drop-in malloc for unmodified C and C++ programs. It meshes:
it merges spans of the same size class whose live objects sit at
non-overlapping offsets onto one physical page, which cuts the memory of
fragmented heaps without moving any pointer.")

# ---- DEB --------------------------------------------------------------------------------
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)        # libmesh1_1.0.0-1_amd64.deb
set(CPACK_DEBIAN_PACKAGE_RELEASE ${MESH_PACKAGE_RELEASE})
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)         # dpkg-shlibdeps: libc6, libconfig9
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
if(MESH_PACKAGE_URL)
  set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "${MESH_PACKAGE_URL}")
endif()
set(mesh_deb_version "${PROJECT_VERSION}-${MESH_PACKAGE_RELEASE}")

# Maintainer scripts: debian/libmesh1.{postinst,prerm,postrm} without the #DEBHELPER#
# line (dh_installdeb's placeholder; CPack has nothing to put there), the ldconfig
# trigger dh_makeshlibs would add, the symbols file of debian/ (in a binary package
# it keeps #MINVER# and the Build-Depends-Package field as they are), and the
# conffiles list dh_installdeb would make (CPack makes none).
# debian/libmesh.postinst (it applies the sysctl drop-in) goes to the common package
# the same way.
set(mesh_deb_dir ${MESH_PKG_DIR}/deb)
file(MAKE_DIRECTORY ${mesh_deb_dir}/runtime ${mesh_deb_dir}/common)
foreach(comp_script runtime/postinst runtime/prerm runtime/postrm common/postinst)
  get_filename_component(comp ${comp_script} DIRECTORY)
  get_filename_component(script ${comp_script} NAME)
  set(src ${PROJECT_SOURCE_DIR}/debian/${MESH_DEB_PACKAGE_${comp}}.${script})
  configure_file(${src} ${mesh_deb_dir}/${comp}/${script}.in COPYONLY)
  file(READ ${src} text)
  string(REPLACE "#DEBHELPER#\n\n" "" text "${text}")
  file(WRITE ${mesh_deb_dir}/${comp}/${script} "${text}")
endforeach()
file(WRITE ${mesh_deb_dir}/runtime/triggers "activate-noawait ldconfig\n")
set(mesh_symbols ${PROJECT_SOURCE_DIR}/debian/${MESH_DEB_PACKAGE_runtime}.symbols)
set(mesh_runtime_control ${mesh_deb_dir}/runtime/postinst ${mesh_deb_dir}/runtime/prerm
  ${mesh_deb_dir}/runtime/postrm ${mesh_deb_dir}/runtime/triggers)
if(EXISTS ${mesh_symbols})
  configure_file(${mesh_symbols} ${mesh_deb_dir}/runtime/symbols COPYONLY)
  list(APPEND mesh_runtime_control ${mesh_deb_dir}/runtime/symbols)
endif()
file(WRITE ${mesh_deb_dir}/common/conffiles "${CMAKE_INSTALL_FULL_SYSCONFDIR}/mesh.conf\n")

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME ${MESH_DEB_PACKAGE_runtime})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION "compacting malloc for Linux - shared library
${mesh_description_common}

This package contains the shared library. Programs use it when started with
LD_PRELOAD or linked with it; installing it enables nothing by itself. The
libmesh package holds the configuration file and meshctl, which enables
libmesh for a service or for the whole system.")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
# The library dlopens libconfig (src/config_lib.c), which dpkg-shlibdeps cannot see:
# its package (libconfig.so.9 -> libconfig9) is named here; shlibdeps adds libc6.
string(REGEX REPLACE "^(lib.*)\\.so\\.([0-9]+).*$" "\\1\\2" mesh_libconfig_deb "${MESH_LIBCONFIG_SONAME}")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS "${mesh_libconfig_deb}")
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)   # shlibs: libmesh 1 libmesh1 (>= 1.0.0-1)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA ${mesh_runtime_control})

set(CPACK_DEBIAN_DEV_PACKAGE_NAME ${MESH_DEB_PACKAGE_dev})
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "${MESH_DEB_PACKAGE_runtime} (= ${mesh_deb_version})")
set(CPACK_DEBIAN_DEV_DESCRIPTION "compacting malloc for Linux - development files
${mesh_description_common}

This package contains the header mesh.h (statistics, tuning and compaction
through mesh_mallctl), the libmesh.so link for linking programs with the
allocator, a pkg-config file (mesh) and a CMake package (find_package(mesh),
target mesh::mesh).")

# Architecture amd64 (not all): meshctl is a compiled program.
set(CPACK_DEBIAN_COMMON_PACKAGE_NAME ${MESH_DEB_PACKAGE_common})
set(CPACK_DEBIAN_COMMON_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_COMMON_PACKAGE_DEPENDS "${MESH_DEB_PACKAGE_runtime} (>= ${mesh_deb_version})")
set(CPACK_DEBIAN_COMMON_DESCRIPTION "compacting malloc for Linux - configuration and meshctl
${mesh_description_common}

This package contains the configuration file /etc/mesh.conf, the manual
pages and meshctl, which checks the configuration and the host, shows the
heap statistics of a running program, runs a command with libmesh and
enables or disables it for a systemd service or system-wide (through
/etc/ld.so.preload, after a self-test). Installing it enables libmesh nowhere.

It also ships /usr/lib/sysctl.d/10-libmesh.conf, which raises vm.max_map_count
to 1048576 so that large heaps keep meshing, and applies it on installation
when the limit in force is lower; a higher limit is never lowered.")
set(CPACK_DEBIAN_COMMON_PACKAGE_CONTROL_EXTRA
  ${mesh_deb_dir}/common/conffiles ${mesh_deb_dir}/common/postinst)

# ---- RPM --------------------------------------------------------------------------------
set(CPACK_RPM_COMPONENT_INSTALL ON)
set(CPACK_RPM_FILE_NAME RPM-DEFAULT)           # libmesh-1.0.0-1.x86_64.rpm
set(CPACK_RPM_PACKAGE_RELEASE ${MESH_PACKAGE_RELEASE})
set(CPACK_RPM_PACKAGE_LICENSE "MIT")
set(CPACK_RPM_PACKAGE_GROUP "System Environment/Libraries")
if(MESH_PACKAGE_URL)
  set(CPACK_RPM_PACKAGE_URL "${MESH_PACKAGE_URL}")
endif()
set(mesh_rpm_version "${PROJECT_VERSION}-${MESH_PACKAGE_RELEASE}")
# No /usr/lib/.build-id links: CPack makes no debuginfo packages for them to match.
set(CPACK_RPM_SPEC_MORE_DEFINE "%define packager ${MESH_PACKAGE_CONTACT}
%define _build_id_links none")
# rpmlint -c packaging/rpm/rpmlint.toml: 0 errors, 0 warnings. The settings there
# filter messages that follow openSUSE policy where these packages follow Fedora/RHEL
# (library package named libmesh, not libmesh1; its %license file; GNU hash table
# only; -devel Requires libmesh = version-release), and no-signature (a release signs
# the packages), no-url-tag (no home page yet: -DMESH_PACKAGE_URL=...) and
# dangerous-command-in-%pre/post rm (the scriptlets remove only their own files),
# no-manual-page-for-binary (an rpmlint 2.4 bug: meshctl.8.gz is in libmesh-common);
# packaging/README-packaging.md explains each one.
# Directories the system already owns are not ours (/etc, /usr/share/man/man5, ...).
set(CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION
  ${CMAKE_INSTALL_FULL_SYSCONFDIR} ${CMAKE_INSTALL_FULL_SBINDIR}
  ${CMAKE_INSTALL_FULL_INCLUDEDIR} ${CMAKE_INSTALL_FULL_LIBDIR}
  ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_FULL_LIBDIR}/cmake
  ${CMAKE_INSTALL_FULL_MANDIR} ${CMAKE_INSTALL_FULL_MANDIR}/man3
  ${CMAKE_INSTALL_FULL_MANDIR}/man5 ${CMAKE_INSTALL_FULL_MANDIR}/man8
  ${CMAKE_INSTALL_FULL_DATAROOTDIR}/licenses ${CMAKE_INSTALL_FULL_DATAROOTDIR}/doc
  ${CMAKE_INSTALL_PREFIX}/lib/sysctl.d)

# The scriptlets go into the spec file, where % starts a macro: double it.
foreach(script post preun postun)
  file(READ ${PROJECT_SOURCE_DIR}/packaging/rpm/${script}.sh text)
  string(REPLACE "%" "%%" text "${text}")
  file(WRITE ${MESH_PKG_DIR}/rpm/${script}.sh "${text}")
  configure_file(${PROJECT_SOURCE_DIR}/packaging/rpm/${script}.sh
    ${MESH_PKG_DIR}/rpm/${script}.sh.in COPYONLY)          # reconfigure when it changes
endforeach()

set(CPACK_RPM_RUNTIME_PACKAGE_NAME ${MESH_RPM_PACKAGE_runtime})
set(CPACK_RPM_RUNTIME_PACKAGE_SUMMARY "Compacting malloc for Linux (shared library)")
set(CPACK_RPM_RUNTIME_PACKAGE_DESCRIPTION "${mesh_description_common}

This package contains the shared library. Programs use it when started with
LD_PRELOAD or linked with it; installing it enables nothing by itself. The
libmesh-common package holds the configuration file and meshctl, which enables
libmesh for a service or for the whole system.

It also ships /usr/lib/sysctl.d/10-libmesh.conf, which raises vm.max_map_count
to 1048576 so that large heaps keep meshing, and applies it on installation
when the limit in force is lower; a higher limit is never lowered.")
set(CPACK_RPM_RUNTIME_PACKAGE_REQUIRES "${MESH_LIBCONFIG_SONAME}()(64bit)") # dlopened: not found by rpm's scan
set(CPACK_RPM_RUNTIME_POST_INSTALL_SCRIPT_FILE ${MESH_PKG_DIR}/rpm/post.sh)
set(CPACK_RPM_RUNTIME_PRE_UNINSTALL_SCRIPT_FILE ${MESH_PKG_DIR}/rpm/preun.sh)
set(CPACK_RPM_RUNTIME_POST_UNINSTALL_SCRIPT_FILE ${MESH_PKG_DIR}/rpm/postun.sh)
set(CPACK_RPM_RUNTIME_USER_FILELIST
  "%license ${CMAKE_INSTALL_FULL_DATAROOTDIR}/licenses/${MESH_RPM_PACKAGE_runtime}/LICENSE")

set(CPACK_RPM_DEV_PACKAGE_NAME ${MESH_RPM_PACKAGE_dev})
set(CPACK_RPM_DEV_PACKAGE_SUMMARY "Compacting malloc for Linux (development files)")
set(CPACK_RPM_DEV_PACKAGE_GROUP "Development/Libraries")
set(CPACK_RPM_DEV_PACKAGE_REQUIRES "${MESH_RPM_PACKAGE_runtime}%{?_isa} = ${mesh_rpm_version}")
set(CPACK_RPM_DEV_PACKAGE_DESCRIPTION "${mesh_description_common}

This package contains the header mesh.h (statistics, tuning and compaction
through mesh_mallctl), the libmesh.so link for linking programs with the
allocator, a pkg-config file (mesh) and a CMake package (find_package(mesh),
target mesh::mesh).")

# x86_64 (not noarch): meshctl is a compiled program.
set(CPACK_RPM_COMMON_PACKAGE_NAME ${MESH_RPM_PACKAGE_common})
set(CPACK_RPM_COMMON_PACKAGE_SUMMARY "Compacting malloc for Linux (configuration and meshctl)")
set(CPACK_RPM_COMMON_PACKAGE_GROUP "System Environment/Base")
set(CPACK_RPM_COMMON_PACKAGE_REQUIRES "${MESH_RPM_PACKAGE_runtime}%{?_isa} >= ${mesh_rpm_version}")
set(CPACK_RPM_COMMON_PACKAGE_DESCRIPTION "${mesh_description_common}

This package contains the configuration file /etc/mesh.conf, the manual
pages and meshctl, which checks the configuration and the host, shows the
heap statistics of a running program, runs a command with libmesh and
enables or disables it for a systemd service or system-wide (through
/etc/ld.so.preload, after a self-test). Nothing is enabled on installation.")
set(CPACK_RPM_COMMON_USER_FILELIST
  "%config(noreplace) ${CMAKE_INSTALL_FULL_SYSCONFDIR}/mesh.conf"
  "%doc ${CMAKE_INSTALL_FULL_DATAROOTDIR}/doc/${MESH_RPM_PACKAGE_common}/README.md")

include(CPack)
cpack_add_component(runtime DISPLAY_NAME "Shared library")
cpack_add_component(dev DISPLAY_NAME "Development files" DEPENDS runtime)
cpack_add_component(common DISPLAY_NAME "Configuration and meshctl" DEPENDS runtime)
