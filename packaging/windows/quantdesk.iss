; Inno Setup 6 script: per-user installer for the one-folder build (no administrator rights).
;
;   iscc /DAppVersion=0.1.0 /DSourceDir=dist\quantdesk /DIconFile=build\icons\quantdesk.ico ^
;        /DFlavour=cpu /Odist packaging\windows\quantdesk.iss
;
; packaging/build.py runs it on Windows. Installs into %LOCALAPPDATA%\Programs\Quantdesk, adds a
; Start-menu entry, opens .gguf files with Quantdesk (HKCU\Software\Classes), and registers an
; uninstaller under "Apps & features". The user's chats and models (%LOCALAPPDATA%\Quantdesk)
; are not touched by the uninstaller: nothing the user made is deleted.

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#ifndef SourceDir
  #define SourceDir "..\..\dist\quantdesk"
#endif
#ifndef IconFile
  #define IconFile "..\..\build\icons\quantdesk.ico"
#endif
#ifndef Flavour
  #define Flavour "cpu"
#endif

[Setup]
; One AppId for every flavour: installing the CUDA build replaces the CPU one and vice versa.
AppId={{5B0E6C52-8E0F-4C36-9B55-2F4E0C1D7A41}
AppName=Quantdesk
AppVersion={#AppVersion}
AppVerName=Quantdesk {#AppVersion} ({#Flavour})
AppPublisher=Quantdesk developers
; Per-user install: no UAC prompt; {autopf} is %LOCALAPPDATA%\Programs in this mode.
PrivilegesRequired=lowest
DefaultDirName={autopf}\Quantdesk
DefaultGroupName=Quantdesk
DisableProgramGroupPage=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputBaseFilename=Quantdesk-{#AppVersion}-{#Flavour}-setup
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\quantdesk-gui.exe
UninstallDisplayName=Quantdesk
Compression=lzma2/normal
SolidCompression=yes
WizardStyle=modern
; Tell Explorer that file associations changed (refreshes .gguf icons after install/uninstall).
ChangesAssociations=yes
; A running Quantdesk holds its files open: offer to close it instead of failing mid-copy.
CloseApplications=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "ggufassoc"; Description: "Open .gguf model files with Quantdesk"; GroupDescription: "File types:"

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[InstallDelete]
; A previous version's Python modules and DLLs must not mix with this one's.
Type: filesandordirs; Name: "{app}\_internal"

[Icons]
Name: "{autoprograms}\Quantdesk"; Filename: "{app}\quantdesk-gui.exe"; WorkingDir: "{app}"
Name: "{autoprograms}\Uninstall Quantdesk"; Filename: "{uninstallexe}"
Name: "{autodesktop}\Quantdesk"; Filename: "{app}\quantdesk-gui.exe"; WorkingDir: "{app}"; Tasks: desktopicon

[Registry]
; .gguf → ProgID Quantdesk.gguf, per user. Uninstall removes our ProgID and the values we set,
; never the .gguf key itself (another program may have added to it).
Root: HKCU; Subkey: "Software\Classes\.gguf"; ValueType: string; ValueName: ""; ValueData: "Quantdesk.gguf"; Flags: uninsdeletevalue; Tasks: ggufassoc
Root: HKCU; Subkey: "Software\Classes\.gguf"; ValueType: string; ValueName: "Content Type"; ValueData: "application/x-gguf"; Flags: uninsdeletevalue; Tasks: ggufassoc
Root: HKCU; Subkey: "Software\Classes\.gguf\OpenWithProgids"; ValueType: string; ValueName: "Quantdesk.gguf"; ValueData: ""; Flags: uninsdeletevalue; Tasks: ggufassoc
Root: HKCU; Subkey: "Software\Classes\Quantdesk.gguf"; ValueType: string; ValueName: ""; ValueData: "GGUF language model"; Flags: uninsdeletekey; Tasks: ggufassoc
Root: HKCU; Subkey: "Software\Classes\Quantdesk.gguf\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\quantdesk-gui.exe,0"; Tasks: ggufassoc
Root: HKCU; Subkey: "Software\Classes\Quantdesk.gguf\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\quantdesk-gui.exe"" ""%1"""; Tasks: ggufassoc
; "Open with" list entry, with the types it supports.
Root: HKCU; Subkey: "Software\Classes\Applications\quantdesk-gui.exe"; ValueType: string; ValueName: "FriendlyAppName"; ValueData: "Quantdesk"; Flags: uninsdeletekey
Root: HKCU; Subkey: "Software\Classes\Applications\quantdesk-gui.exe\SupportedTypes"; ValueType: string; ValueName: ".gguf"; ValueData: ""
Root: HKCU; Subkey: "Software\Classes\Applications\quantdesk-gui.exe\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\quantdesk-gui.exe"" ""%1"""

[Run]
Filename: "{app}\quantdesk-gui.exe"; Description: "{cm:LaunchProgram,Quantdesk}"; Flags: nowait postinstall skipifsilent
